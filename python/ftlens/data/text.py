"""Plain text, one sentence per line (out-of-domain sets)."""

from __future__ import annotations

import os

from .errors import read_utf8


def read_text(path: str | os.PathLike, *, min_words: int = 1, max_sentences: int | None = None) -> list[str]:
    """Non-blank lines, stripped, with at least ``min_words`` words (first ``max_sentences``)."""
    for name, value in (("min_words", min_words), ("max_sentences", max_sentences)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            allowed = "a positive integer" + (" or None" if name == "max_sentences" else "")
            raise ValueError(f"{name} must be {allowed}, got {value!r}")
    out = []
    for line in read_utf8(path).splitlines():
        line = line.strip()
        if line and len(line.split()) >= min_words:
            out.append(line)
            if max_sentences is not None and len(out) >= max_sentences:
                break
    return out
