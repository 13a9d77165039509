"""Synthetic stores for the probe tests: sentences with trees, tags that depend on the
activations, and a constant offset on some dimensions (as BERT's outliers)."""

from __future__ import annotations

import numpy as np

import ftlens


def synthetic_sentences(n_sentences: int, seed: int, layers: int = 3, dim: int = 8, offset: float = 30.0):
    """(layers [L, n, d] float32, labels dict, index [n, 2]) for sentences of 3-9 words with
    random trees; "upos" has 3 classes readable from layer 1, "deprel" 2 classes from the
    word and its head, "word" types from a small vocabulary."""
    rng = np.random.default_rng(seed)
    index, heads, words = [], [], []
    for s in range(n_sentences):
        n = int(rng.integers(3, 10))
        root = int(rng.integers(n))
        order = [root] + [i for i in rng.permutation(n) if i != root]
        head = np.zeros(n, dtype=np.int64)
        for k, i in enumerate(order[1:], 1):
            head[i] = order[int(rng.integers(k))] + 1
        index += [(s, i) for i in range(n)]
        heads += head.tolist()
        words += [f"w{int(v)}" for v in rng.integers(0, 40, n)]
    index = np.array(index)
    n_rows = len(index)
    base = rng.normal(size=(n_rows, dim))
    upos = np.argmax(base[:, :3], 1)
    states = np.stack([base + 0.3 * layer * rng.normal(size=(n_rows, dim)) for layer in range(layers)])
    states[1] += 2.0 * np.eye(dim)[upos]
    states[:, :, [0, 2]] += offset
    dep = (upos + np.where(np.array(heads) > 0, upos[np.maximum(np.array(heads) - 1 + _starts(index), 0)], 0)) % 2
    labels = {"upos": np.array(["NOUN", "PUNCT", "VERB"])[upos], "deprel": np.array(["nsubj", "obj"])[dep],
              "head": np.array(heads), "word": np.array(words)}
    return states.astype(np.float32), labels, index


def _starts(index: np.ndarray) -> np.ndarray:
    """The first row of each row's sentence."""
    first = np.zeros(index[:, 0].max() + 1, dtype=np.int64)
    np.maximum.at(first, index[:, 0], 0)
    starts = np.flatnonzero(np.r_[True, index[1:, 0] != index[:-1, 0]])
    first[index[starts, 0]] = starts
    return first[index[:, 0]]


def synthetic_store(n_sentences: int = 120, seed: int = 0, **kwargs):
    states, labels, index = synthetic_sentences(n_sentences, seed, **kwargs)
    return ftlens.store.from_arrays(states, labels, rows="words", index=index, model="synthetic")
