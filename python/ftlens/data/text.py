"""Plain text, one sentence per line (out-of-domain sets)."""

from __future__ import annotations

import os


def read_text(path: str | os.PathLike, *, min_words: int = 1, max_sentences: int | None = None) -> list[str]:
    """Non-blank lines, stripped, with at least ``min_words`` words (first ``max_sentences``)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and len(line.split()) >= min_words:
                out.append(line)
                if max_sentences is not None and len(out) >= max_sentences:
                    break
    return out
