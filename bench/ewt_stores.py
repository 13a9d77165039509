"""MiniLM activation stores of UD English EWT for the probe benchmarks, written once into
the temp folder (``ftlens.store.write`` reuses a finished store, so reruns are free)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import ftlens
from ftlens.data import read_conllu

FOLDER = Path(os.environ.get("FTLENS_BENCH_STORES", Path(tempfile.gettempdir()) / "ftlens-bench-stores"))


def ewt_sentences(split: str):
    data = Path(os.environ.get("FTLENS_DATA_DIR", "../shared/data"))
    return read_conllu(data / "ud_en_ewt" / f"en_ewt-ud-{split}.conllu")


def ewt_store(split: str, min_words: int | None = None):
    """The store of the EWT ``split`` (whole sentences, the first ones reaching at least
    ``min_words`` words when given)."""
    sentences = ewt_sentences(split)
    if min_words is not None:
        total, count = 0, 0
        while total < min_words:
            total += len(sentences[count].words)
            count += 1
        sentences = sentences[:count]
    name = f"ewt_{split}" + (f"_{min_words}" if min_words else "")
    return ftlens.store.write("minilm", sentences, FOLDER / name, rows="words", progress=False)
