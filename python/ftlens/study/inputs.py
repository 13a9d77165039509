"""A study's data entries read into examples, and the fingerprints that key its stages."""

from __future__ import annotations

import os
from pathlib import Path

from .. import data as readers
from ..finetuning.task import fingerprint
from ..models import resolve
from .cache import digest
from .config import DataSpec

READERS = {
    "conllu": readers.read_conllu,
    "pairs": readers.read_pairs,
    "squad": readers.read_squad,
    "text": readers.read_text,
}


def load(spec: DataSpec):
    """The examples a data entry names (``limit`` of a file's, from the ``start``-th)."""
    if spec.generated == "sentences":
        return readers.generate_sentences(spec.n, seed=spec.seed)
    if spec.generated == "pairs":
        return readers.generate_pairs(spec.n, seed=spec.seed)
    examples = READERS[spec.format](spec.path)
    start = spec.start or 0
    chosen = examples[start:] if spec.limit is None else examples[start : start + spec.limit]
    if not chosen:
        raise ValueError(f"{spec.path} has {len(examples)} examples: none left from start={start}")
    return chosen


class Examples:
    """Each data entry read once, with its fingerprint."""

    def __init__(self) -> None:
        self._loaded: dict[DataSpec, tuple] = {}

    def __call__(self, spec: DataSpec):
        if spec not in self._loaded:
            examples = load(spec)
            self._loaded[spec] = (examples, fingerprint(examples))
        return self._loaded[spec][0]

    def fingerprint(self, spec: DataSpec) -> dict:
        self(spec)
        return self._loaded[spec][1]


def model_fingerprint(name_or_path: str | os.PathLike) -> str:
    """A digest of a model folder's weights and config (size and content), or of the hub
    name when it is not a folder."""
    folder = Path(resolve(name_or_path))
    if not folder.is_dir():
        return digest({"hub": str(name_or_path)})
    parts = {}
    for file in sorted(folder.iterdir()):
        if file.suffix in (".safetensors", ".bin") or file.name == "config.json":
            parts[file.name] = _file_digest(file)
    if not parts:
        raise ValueError(f"{folder} holds no model weights (*.safetensors or *.bin): is it a model folder?")
    return digest(parts)


def _file_digest(file: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
