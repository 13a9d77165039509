"""Fingerprints: SHA-256 digests that decide whether recorded work can be reused (a store,
a fine-tuning run, a study stage). One module, so that two fingerprints of one thing never
hash different things under one name."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

BLOCK = 1 << 22  # bytes read at a time from a file


def of_json(value) -> str:
    """A JSON-able value (keys sorted; other objects by ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def of_weights(model: torch.nn.Module) -> str:
    """A model's parameters and buffers: names, shapes, dtypes and values."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def of_examples(data: Sequence) -> dict:
    """Examples (dataclasses or JSON-able records): their count and a digest of their content."""
    digest = hashlib.sha256()
    for item in data:
        record = dataclasses.asdict(item) if dataclasses.is_dataclass(item) else item
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return {"examples": len(data), "sha256": digest.hexdigest()}


def of_items(items: Iterable) -> str:
    """Aligned inputs (``activations.align.Item``): texts, word spans and labels."""
    digest = hashlib.sha256()
    for it in items:
        digest.update(json.dumps([[s.text, s.spans] for s in it.segments], ensure_ascii=False).encode())
        digest.update(json.dumps([it.word_labels, it.label], sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def of_file(file: Path) -> str:
    """A file's bytes, read a block at a time."""
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def of_model_folder(folder: Path) -> str:
    """A saved model: its weight files and config.json (a folder without weights is refused)."""
    parts = {file.name: of_file(file) for file in sorted(Path(folder).iterdir())
             if file.suffix in (".safetensors", ".bin") or file.name == "config.json"}
    if not any(name != "config.json" for name in parts):
        raise ValueError(f"{folder} holds no model weights (*.safetensors or *.bin): is it a model folder?")
    return of_json(parts)
