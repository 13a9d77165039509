"""The activation store: every layer of one model over a data set, on disk, for multi-pass
work (probes, pairwise tiles).

Layout of a store folder::

    manifest.json      model, data fingerprint, options, layers, rows, label vocabularies,
                       shards done (rewritten atomically after each shard)
    layer_00.npy ...   one [rows, hidden] array per layer (np.load(..., mmap_mode="r"))
    rows.npy           [rows, 2] int64: (input index, word or token index) of each row
    labels/<name>.npy  per-row label codes (UPOS, XPOS, deprel, head, NLI label, ...)

The row plan (and so every file's shape) is computed before any forward pass, so an
interrupted write resumes at the first unfinished shard and ends byte-identical to an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from . import align
from ._io import atomic_write, write_json
from .capture import layer_names
from .models import as_model
from .stream import ActivationStream

FORMAT = "ftlens-store-1"
DTYPES = ("float16", "float32")


def layer_file(index: int) -> str:
    return f"layer_{index:02d}.npy"


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the parameter names, shapes and values."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def data_fingerprint(items: Sequence[align.Item]) -> str:
    """SHA-256 over the texts, words and labels of the inputs."""
    digest = hashlib.sha256()
    for it in items:
        digest.update(json.dumps([[s.text, s.spans] for s in it.segments], ensure_ascii=False).encode())
        digest.update(json.dumps([it.word_labels, it.label], sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def _row_labels(items: Sequence[align.Item], item: np.ndarray, unit: np.ndarray, rows: str):
    """{name: (codes [rows] int64, vocabulary or None for integer labels)}."""
    out = {}
    if items[0].label is not None:
        vocab = sorted({it.label for it in items if it.label is not None})
        index = {v: i for i, v in enumerate(vocab)}
        out["label"] = (np.array([index.get(items[i].label, -1) for i in item], dtype=np.int64), vocab)
    if rows == "words" and items[0].word_labels:
        for name in items[0].word_labels:
            values = [items[i].word_labels[name][u] if u < len(items[i].word_labels[name]) else None
                      for i, u in zip(item, unit, strict=True)]
            if name == "head":
                out[name] = (np.array([-1 if v is None else v for v in values], dtype=np.int64), None)
                continue
            vocab = sorted({v for it in items for v in it.word_labels[name]})
            index = {v: i for i, v in enumerate(vocab)}
            out[name] = (np.array([index.get(v, -1) for v in values], dtype=np.int64), vocab)
    return out


def _plan(stream: ActivationStream, items: Sequence[align.Item]):
    """Shards (the stream's blocks) and their rows, from tokenization alone:
    (shard bounds, shard row counts, item, unit)."""
    bounds, counts, items_of, units_of = [], [], [], []
    for start, block in stream.blocks(items):
        item, unit = stream.plan_block(block)
        bounds.append((start, start + len(block)))
        counts.append(len(item))
        items_of.append(item + start)
        units_of.append(unit)
    return bounds, counts, np.concatenate(items_of), np.concatenate(units_of)


def write(model, data, path: str | os.PathLike, dtype: str = "float16", *, rows: str = "tokens",
          word_pool: str = "first", segment: int | None = None, shard_size: int = 256,
          max_shard_tokens: int = 8192,
          batch_size: int = 64, max_length: int | None = None, autocast: str | None = None,
          device=None, progress: bool = True) -> ActivationStore:
    """Captures every layer of ``model`` over ``data`` into a store folder at ``path``.

    Rerunning the same call after an interruption resumes at the first unfinished shard;
    a finished store is returned as is. A folder holding a store of another model, data
    set or options is refused.

    Args:
        model: a name, a folder, "minilm" or a (model, tokenizer) pair.
        data: sentences, sentence pairs or a reader's output (labels are carried along).
        dtype: "float16" (half the disk) or "float32".
        rows, word_pool, segment: which rows to keep (see ActivationStream).
        shard_size, max_shard_tokens: at most this many inputs and tokens per shard (the
            unit of resumption; bounds the memory of a shard in flight).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    path = Path(path)
    model, tokenizer = as_model(model, device)
    items = align.as_items(data)
    stream = ActivationStream([(model, tokenizer)], rows=rows, word_pool=word_pool, segment=segment,
                              batch_size=batch_size, block_size=shard_size,
                              max_block_tokens=max_shard_tokens, max_length=max_length,
                              autocast=autocast, progress=False)
    align.check_rows(rows, word_pool, segment, len(items[0].segments))
    identity = {
        "format": FORMAT,
        "model": getattr(model.config, "_name_or_path", "") or type(model).__name__,
        "model_fingerprint": model_fingerprint(model),
        "data_fingerprint": data_fingerprint(items),
        "n_inputs": len(items),
        "rows": rows, "word_pool": word_pool, "segment": segment, "dtype": dtype,
        "shard_size": int(shard_size), "max_shard_tokens": int(max_shard_tokens),
        "max_length": stream.max_length, "autocast": autocast,
    }
    manifest_path = path / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        different = [k for k, v in identity.items() if manifest.get(k) != v]
        if different:
            raise ValueError(
                f"{path} holds a store with a different {', '.join(different)}; pass another "
                "path, or delete that folder to start over"
            )
    else:
        manifest = _create(path, identity, stream, items)
    _fill(path, manifest, stream, items, progress)
    return ActivationStore(path)


def _create(path: Path, identity: dict, stream: ActivationStream, items) -> dict:
    bounds, counts, item, unit = _plan(stream, items)
    n_rows, dim = int(sum(counts)), stream.dims[0]
    path.mkdir(parents=True, exist_ok=True)
    def allocate(tmp):
        np.lib.format.open_memmap(tmp, mode="w+", dtype=identity["dtype"], shape=(n_rows, dim)).flush()

    for layer in range(stream.layers[0]):
        atomic_write(path / layer_file(layer), allocate)
    atomic_write(path / "rows.npy", lambda tmp: np.save(tmp, np.stack([item, unit], 1)))
    vocabularies = {}
    for name, (codes, vocab) in _row_labels(items, item, unit, identity["rows"]).items():
        atomic_write(path / "labels" / f"{name}.npy", lambda tmp, c=codes: np.save(tmp, c))
        vocabularies[name] = vocab
    manifest = {
        **identity,
        "n_rows": n_rows, "n_layers": stream.layers[0], "dim": dim,
        "layers": layer_names(stream.layers[0]),
        "labels": vocabularies,
        "files": {"layers": [layer_file(i) for i in range(stream.layers[0])], "rows": "rows.npy",
                  "labels": {name: f"labels/{name}.npy" for name in vocabularies}},
        "shard_bounds": [[int(a), int(b)] for a, b in bounds],
        "shard_rows": [int(c) for c in counts], "shards_done": 0, "complete": False,
        "truncated": 0, "words_dropped": 0,
    }
    write_json(path / "manifest.json", manifest)
    return manifest


def _fill(path: Path, manifest: dict, stream: ActivationStream, items, progress: bool) -> None:
    from tqdm.auto import tqdm

    shards = manifest["shard_rows"]
    offsets = np.concatenate([[0], np.cumsum(shards)]).astype(np.int64)
    files = [np.load(path / name, mmap_mode="r+") for name in manifest["files"]["layers"]]
    with tqdm(total=len(shards), initial=manifest["shards_done"], unit="shard", desc="store",
              disable=not progress) as bar:
        for s in range(manifest["shards_done"], len(shards)):
            stream.truncated = stream.words_dropped = 0
            start, stop = manifest["shard_bounds"][s]
            chunk = stream.block(items[start:stop], start)
            if chunk.states[0].shape[1] != shards[s]:
                raise RuntimeError(f"shard {s} produced {chunk.states[0].shape[1]} rows, planned {shards[s]}")
            values = chunk.states[0].cpu().numpy()
            for layer, f in enumerate(files):
                f[offsets[s] : offsets[s + 1]] = values[layer]
                f.flush()
            manifest["shards_done"] = s + 1
            manifest["truncated"] += stream.truncated
            manifest["words_dropped"] += stream.words_dropped
            manifest["complete"] = s + 1 == len(shards)
            write_json(path / "manifest.json", manifest)
            bar.update(1)


class ActivationStore:
    """Read access to a finished store: memory-mapped layers, row index, labels, chunks."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"{self.path} is not an activation store (no manifest.json)")
        self.manifest = json.loads(manifest_path.read_text())
        if self.manifest.get("format") != FORMAT:
            raise ValueError(f"{self.path}: unknown store format {self.manifest.get('format')!r}")
        if not self.manifest["complete"]:
            done, total = self.manifest["shards_done"], len(self.manifest["shard_rows"])
            raise ValueError(
                f"{self.path} is incomplete ({done}/{total} shards written); rerun "
                "ftlens.store.write with the same arguments to resume it"
            )

    n_rows = property(lambda self: self.manifest["n_rows"])
    n_layers = property(lambda self: self.manifest["n_layers"])
    dim = property(lambda self: self.manifest["dim"])

    def __repr__(self) -> str:
        return (f"ActivationStore({str(self.path)!r}, rows={self.n_rows}, layers={self.n_layers}, "
                f"dim={self.dim})")

    def layer(self, index: int) -> np.ndarray:
        """Layer ``index`` (0 = embeddings) as a read-only memmap [rows, dim]."""
        if not 0 <= index < self.n_layers:
            raise IndexError(f"layer {index} out of range: the store has {self.n_layers} layers")
        return np.load(self.path / layer_file(index), mmap_mode="r")

    @property
    def rows(self) -> np.ndarray:
        """[rows, 2] int64: (input index, word or token index) of each row."""
        return np.load(self.path / "rows.npy")

    def label_names(self) -> list[str]:
        return list(self.manifest["labels"])

    def labels(self, name: str) -> tuple[np.ndarray, list | None]:
        """(codes [rows], vocabulary) of a carried label; integer labels (head) have no vocabulary."""
        if name not in self.manifest["labels"]:
            raise KeyError(f"no label {name!r} in this store; it has {self.label_names()}")
        return np.load(self.path / "labels" / f"{name}.npy"), self.manifest["labels"][name]

    def chunks(self, chunk_rows: int = 8192, layers: Sequence[int] | None = None,
               dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """Yields [len(layers), rows, dim] tensors of consecutive rows."""
        layers = range(self.n_layers) if layers is None else list(layers)
        arrays = [self.layer(i) for i in layers]
        for start in range(0, self.n_rows, chunk_rows):
            rows = [torch.from_numpy(np.array(a[start : start + chunk_rows])) for a in arrays]
            yield torch.stack(rows).to(dtype)


def open(path: str | os.PathLike) -> ActivationStore:  # noqa: A001 - mirrors ftlens.store.write
    """Opens a finished store for reading."""
    return ActivationStore(path)
