"""Synthetic stores for the probe tests: sentences with trees, tags that depend on the
activations, and a constant offset on some dimensions (as BERT's outliers)."""

from __future__ import annotations

import ftlens
import numpy as np


def synthetic_sentences(n_sentences: int, seed: int, layers: int = 3, dim: int = 8, offset: float = 30.0):
    """(layers [L, n, d] float32, labels dict, index [n, 2]) for sentences of 3-9 words with
    random trees; "upos" has 3 classes readable best from layer 1, "deprel" 2 classes from
    the word's and its head's tags, "word" types from a small vocabulary."""
    rng = np.random.default_rng(seed)
    index, head_rows, heads = [], [], []
    for s in range(n_sentences):
        n, start = int(rng.integers(3, 10)), len(index)
        order = rng.permutation(n)
        head = np.zeros(n, dtype=np.int64)
        for k in range(1, n):
            head[order[k]] = order[rng.integers(k)] + 1
        index += [(s, i) for i in range(n)]
        heads += head.tolist()
        head_rows += [start + h - 1 if h else start + i for i, h in enumerate(head)]
    index, n_rows = np.array(index), len(index)
    base = rng.normal(size=(n_rows, dim))
    upos = np.argmax(base[:, :3], 1)
    states = np.stack([base + 0.3 * layer * rng.normal(size=(n_rows, dim)) for layer in range(layers)])
    states[min(1, layers - 1)] += 2.0 * np.eye(dim)[upos]
    states[:, :, [0, 2]] += offset
    labels = {"upos": np.array(["NOUN", "PUNCT", "VERB"])[upos],
              "deprel": np.array(["nsubj", "obj"])[(upos + upos[head_rows]) % 2],
              "head": np.array(heads), "word": np.array([f"w{v}" for v in rng.integers(0, 40, n_rows)])}
    return states.astype(np.float32), labels, index


def synthetic_store(n_sentences: int = 120, seed: int = 0, **kwargs):
    states, labels, index = synthetic_sentences(n_sentences, seed, **kwargs)
    return ftlens.store.from_arrays(states, labels, rows="words", index=index, model="synthetic")
