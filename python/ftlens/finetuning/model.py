"""An encoder with a task head, as one ``nn.Module`` the Trainer trains, saved as the
encoder's own Hugging Face folder (``ftlens.load_model`` and ``AutoModel`` read it) plus
the head's weights (``head.safetensors``) and its description (``head.json``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from .._util import files

HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head.json"
_MODELS: dict[str, type[TaskModel]] = {}


class TaskModel(nn.Module):
    """``encoder`` (a Hugging Face base model) and a head built from ``head_options``
    (JSON values: saved in head.json and passed back to the constructor on load).
    Subclasses set ``kind`` and define the head and ``forward``."""

    kind = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _MODELS[cls.kind] = cls

    def __init__(self, encoder: nn.Module, **head_options):
        super().__init__()
        self.encoder = encoder
        self.head_options = head_options
        pooler = getattr(encoder, "pooler", None)
        if isinstance(pooler, nn.Module):
            # No head reads the pooler; fixed, it keeps its weights and DDP has no unused gradients.
            pooler.requires_grad_(False)

    @property
    def base_model(self) -> nn.Module:
        return self.encoder

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size

    def init_linear(self, *layers: nn.Linear) -> None:
        """The encoder's initializer for new head layers: normal(0, initializer_range), zero bias."""
        std = getattr(self.encoder.config, "initializer_range", 0.02)
        for layer in layers:
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's last hidden states [batch, tokens, hidden]."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    def head_state(self) -> dict[str, torch.Tensor]:
        return {k: v.contiguous() for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def save(self, folder: str | os.PathLike, tokenizer=None) -> Path:
        """Writes the model (and ``tokenizer``) into ``folder`` whole or not at all (a
        sibling temporary folder, then a rename)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        tmp = folder.with_name(f".{folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.encoder.save_pretrained(tmp)
        save_file(self.head_state(), str(tmp / HEAD_WEIGHTS))
        files.write_json(tmp / HEAD_CONFIG, {"kind": self.kind, "options": self.head_options})
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        return folder


def is_task_model(folder: str | os.PathLike) -> bool:
    return (Path(folder) / HEAD_CONFIG).is_file()


def load_task_model(folder: str | os.PathLike, device: str | torch.device = "cpu") -> TaskModel:
    """The encoder and head saved in ``folder`` (a run's ``model/``), in eval mode."""
    import transformers
    from safetensors.torch import load_file

    folder = Path(folder)
    if not is_task_model(folder):
        raise FileNotFoundError(f"{folder} holds no fine-tuned model with a task head ({HEAD_CONFIG} is "
                                "missing): pass the model/ folder of an ftlens.finetune run")
    described = json.loads((folder / HEAD_CONFIG).read_text())
    encoder = transformers.AutoModel.from_pretrained(folder)
    model = _MODELS[described["kind"]](encoder, **described["options"])
    missing, unexpected = model.load_state_dict(load_file(str(folder / HEAD_WEIGHTS)), strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise ValueError(f"{folder / HEAD_WEIGHTS} does not match its head: missing {missing}, "
                         f"unexpected {unexpected}")
    return model.to(device).eval()
