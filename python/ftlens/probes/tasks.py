"""Probe tasks: what each name means, the labels of each task on a store, control tasks.

Task names:

* a label the store carries per row: ``"upos"``, ``"xpos"``, ``"deprel"`` (the word's own
  relation), ``"label"`` (a sentence or pair label with rows "cls" / "mean");
* ``"edge:<label>"``: the label of each (dependent, head) pair, e.g. ``"edge:deprel"``,
  from features [h_dep; h_head] (Tenney et al. 2019, one-word spans);
* ``"arc"``: gold (dependent, head) pairs against sampled non-arcs of the same sentence;
* ``"distance"`` and ``"depth"``: the structural probes (Hewitt & Manning 2019);
* ``"control:<label>"``: the control task of a row task (Hewitt & Liang 2019), added for
  every word-level row task when ``control=True``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

DEFAULT_TASKS = ("upos", "deprel")  # what probe(), the CLI and a study's probes default to
STRUCTURAL = ("distance", "depth")
NOT_TASKS = ("head", "word")  # store labels that are inputs of other tasks
UNSEEN = -2  # an eval label the training rows never had: counted as wrong


@dataclass(frozen=True)
class ProbeTask:
    """One probe task. kind: "row", "edge", "arc" or "structural"; label: the store label
    it reads ("upos", "deprel"; None for "arc" and the structural tasks)."""

    name: str
    kind: str
    label: str | None = None
    control: bool = False  # a control task: labels drawn per word type


def available(store) -> list[str]:
    """The task names a store supports."""
    labels = {name: store.manifest["labels"][name] is not None for name in store.label_names()}
    return supported(labels, store.manifest["rows"])


def supported(labels: dict[str, bool], rows: str) -> list[str]:
    """The task names of a store with these labels (name -> whether it has a vocabulary,
    as ``store.label_schema`` gives them) and row kind."""
    row_tasks = [n for n, coded in labels.items() if n not in NOT_TASKS and coded]
    if rows != "words" or "head" not in labels:
        return row_tasks
    return row_tasks + [f"edge:{n}" for n in row_tasks] + ["arc", *STRUCTURAL]


def resolve_tasks(names, train, evals, control: bool) -> list[ProbeTask]:
    """Tasks for the given names (control tasks appended), checked against the train store
    and every eval store (``evals``: a list of them)."""
    if isinstance(names, str):
        names = (names,)
    names = list(dict.fromkeys(names))
    if not names:
        raise ValueError("tasks is empty; pass at least one task name")
    eval_roles = [(e, "eval" if len(evals) == 1 else f"eval #{i}") for i, e in enumerate(evals)]
    roles = [(train, "train"), *eval_roles]
    tasks = []
    for name in names:
        for store, role in roles:
            _check_supported(name, store, role)
        if name in STRUCTURAL:
            tasks.append(ProbeTask(name, "structural"))
        elif name == "arc":
            tasks.append(ProbeTask(name, "arc"))
        elif name.startswith("edge:"):
            tasks.append(ProbeTask(name, "edge", name[5:]))
        else:
            tasks.append(ProbeTask(name, "row", name))
    if control:
        words = all("word" in s.label_names() for s, _ in roles)
        tasks += [ProbeTask(f"control:{t.name}", "row", t.label, control=True) for t in tasks
                  if t.kind == "row" and words and train.manifest["rows"] == "words"]
    return tasks


def _check_supported(name: str, store, role: str) -> None:
    if name in available(store):
        return
    where = f"the {role} store ({store.manifest['rows']} rows, labels {store.label_names()})"
    needs_words = name in STRUCTURAL or name == "arc" or name.startswith("edge:")
    if needs_words and (store.manifest["rows"] != "words" or "head" not in store.label_names()):
        raise ValueError(f"task {name!r} needs a store with rows='words' and a 'head' label (CoNLL-U data); "
                         f"{where} has none. Write it with ftlens.store.write(..., rows='words') from "
                         "read_conllu data")
    raise ValueError(f"unknown task {name!r} for {where}; available: {available(store)}")


def row_labels(task: ProbeTask, train, evals, seed: int) -> tuple[np.ndarray, list[np.ndarray], list]:
    """(train codes [rows], each eval store's codes [rows], vocabulary) of a row task. Eval
    labels are coded in the training vocabulary; labels never seen in training get
    ``UNSEEN``. Rows without a label get -1."""
    train_codes, vocab = train.labels(task.label)
    present = np.bincount(train_codes[train_codes >= 0], minlength=len(vocab))
    keep = [v for v, c in zip(vocab, present, strict=True) if c > 0]  # classes training has rows of
    index = {v: i for i, v in enumerate(keep)}

    def coded(store) -> np.ndarray:
        codes, store_vocab = store.labels(task.label)
        return np.array([index.get(v, UNSEEN) for v in store_vocab] + [-1], dtype=np.int64)[codes]  # -1 stays

    train_codes, eval_codes = coded(train), [coded(e) for e in evals]
    if task.control:
        train_codes, eval_codes = _control_labels(task, train, evals, train_codes, eval_codes, len(keep),
                                                  seed)
    return train_codes, eval_codes, keep


def _control_labels(task: ProbeTask, train, evals, train_codes, eval_codes, n_classes: int, seed: int):
    """Hewitt & Liang's control task: every word type gets a fixed label drawn from the
    task's training label distribution; rows keep their task's missing labels. A type's
    draw is a function of (seed, label, word) alone, so it is the same whichever stores
    are probed together."""
    counts = np.bincount(train_codes[train_codes >= 0], minlength=n_classes).astype(np.float64)
    edges = np.cumsum(counts / counts.sum())
    out = []
    for store in (train, *evals):
        words, vocab = store.labels("word")
        drawn = np.minimum(np.searchsorted(edges, word_uniforms(vocab, task.label, seed), side="right"),
                           n_classes - 1)
        out.append(drawn[words])
    return (np.where(train_codes >= 0, out[0], -1),
            [np.where(e != -1, o, -1) for e, o in zip(eval_codes, out[1:], strict=True)])


def word_uniforms(words, label: str, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per word, from a hash of (seed, label, word): the same
    word always gets the same number, whatever else is drawn."""
    key = f"{seed}\x1f{label}\x1f".encode()
    digests = [hashlib.blake2b(key + w.encode(), digest_size=8).digest() for w in words]
    return np.frombuffer(b"".join(digests), dtype="<u8").astype(np.float64) / 2.0**64
