"""What every result dataclass shares: JSON with NaN as null, atomic save, load."""

from __future__ import annotations

import json
import os

import numpy as np

from .files import write_json


def listed(values) -> list:
    """An array as nested lists, NaN as None (standard JSON)."""
    data = np.asarray(values, dtype=np.float64)
    out = data.astype(object)
    out[np.isnan(data)] = None
    return out.tolist()


def unlisted(values) -> np.ndarray:
    """Nested lists back to a float64 array, None as NaN."""
    return np.array(values, dtype=np.float64)


class JsonResult:
    """Mixin: ``save(path)`` writes ``to_dict()`` atomically; ``load(path)`` reads it back
    through ``from_dict``."""

    def to_dict(self) -> dict:  # pragma: no cover - each result defines it
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict):  # pragma: no cover - each result defines it
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Writes the result as JSON (atomically)."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike):
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
