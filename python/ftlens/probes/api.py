"""``ftlens.probe``: every layer x every task of a store, in few passes."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._util.options import with_overrides
from ..activations import store as store_module
from . import tasks as task_module
from .features import ProbeRows, arc_rows, edge_rows
from .linear import LinearProbes, input_counts, offsets_of, scores
from .logistic import fit_logistic, whitening
from .mdl import online_codelength
from .options import ProbeOptions
from .result import PROPORTIONS, ProbeResult
from .ridge import fit_ridge, folds_of
from .structural import evaluate_structural, train_structural

L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3)  # l2 on the mean cross-entropy; scikit-learn's C = 1 / (l2 n)
START_L2 = 1e-4  # the ridge start of logistic probes: this strength per row (alpha = START_L2 n)


@dataclass
class _Group:
    """Tasks that share feature rows: their train rows and labels [n, T], and each eval
    store's rows and labels."""

    tasks: list[task_module.ProbeTask]
    train: ProbeRows
    train_labels: np.ndarray
    widths: list[int]
    vocabularies: list[list]
    evals: list[ProbeRows]
    eval_labels: list[np.ndarray]


@dataclass
class _Trained:
    """A group's probes, their strengths [L, T] and the training-only metrics (MDL)."""

    probes: LinearProbes
    strength: np.ndarray
    metrics: dict[str, np.ndarray]


def _check_pair(train, eval_store) -> None:
    a, b = train.manifest, eval_store.manifest
    for key, what in (("model_fingerprint", "models"), ("rows", "row kinds"), ("dim", "widths"),
                      ("n_layers", "layer counts")):
        if a.get(key) != b.get(key):
            detail = f"{a.get('model')!r} vs {b.get('model')!r}" if key == "model_fingerprint" else \
                f"{a.get(key)!r} vs {b.get(key)!r}"
            raise ValueError(f"the train and eval stores come from different {what} ({detail}); probe "
                             "stores written by the same model with the same rows= setting")


def _layers(layers, n_layers: int) -> list[int]:
    if layers is None:
        return list(range(n_layers))
    layers = [int(i) for i in np.atleast_1d(layers)]
    bad = [i for i in layers if not 0 <= i < n_layers]
    if bad or not layers:
        raise ValueError(f"layers {bad or layers} out of range: the stores have layers 0..{n_layers - 1}")
    return layers


def _check_classes(task: task_module.ProbeTask, codes: np.ndarray, vocab: list) -> None:
    present = np.unique(codes[codes >= 0])
    if len(present) < 2:
        raise ValueError(f"task {task.name!r} has {len(present)} class(es) in the training rows "
                         f"({[vocab[i] for i in present]}); a probe needs at least two")


def _row_group(row_tasks, train, evals, layers, seed) -> _Group:
    train_cols, eval_cols, vocabularies = [], [[] for _ in evals], []
    for task in row_tasks:
        tr, evs, vocab = task_module.row_labels(task, train, evals, seed)
        for store, ev in zip([train, *evals], [tr, *evs], strict=True):
            if len(ev) != store.n_rows:
                raise ValueError(f"label {task.label!r} has {len(ev)} values for the {store.n_rows} rows of "
                                 f"{getattr(store, 'path', 'a store')}; the store's label files are damaged")
        _check_classes(task, tr, vocab)
        train_cols.append(tr)
        for cols, ev in zip(eval_cols, evs, strict=True):
            cols.append(ev)
        vocabularies.append(vocab)
    train_labels = np.stack(train_cols, 1)
    keep_train = np.flatnonzero((train_labels >= 0).all(1))
    eval_labels = [np.stack(cols, 1) for cols in eval_cols]
    keep_evals = [np.flatnonzero((labels != -1).any(1)) for labels in eval_labels]
    return _Group(row_tasks, ProbeRows(train, layers, keep_train), train_labels[keep_train],
                  [len(v) for v in vocabularies], vocabularies,
                  [ProbeRows(e, layers, keep) for e, keep in zip(evals, keep_evals, strict=True)],
                  [labels[keep] for labels, keep in zip(eval_labels, keep_evals, strict=True)])


def _edge_group(edge_tasks, train, evals, layers, combine, seed) -> _Group:
    rows_tr, rows_evs = edge_rows(train, layers, combine), [edge_rows(e, layers, combine) for e in evals]
    group = _row_group([task_module.ProbeTask(t.name, "row", t.label) for t in edge_tasks], train, evals,
                       layers, seed)
    tr_labels = _full(group.train_labels, group.train.first, train.n_rows)[rows_tr.first]
    parts = zip(group.eval_labels, group.evals, evals, rows_evs, strict=True)
    ev_labels = [_full(labels, rows.first, e.n_rows)[rows_ev.first] for labels, rows, e, rows_ev in parts]
    keep = (tr_labels >= 0).all(1)
    rows_tr = ProbeRows(train, layers, rows_tr.first[keep], rows_tr.second[keep], combine)
    return _Group(edge_tasks, rows_tr, tr_labels[keep], group.widths, group.vocabularies, rows_evs, ev_labels)


def _full(labels: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    out = np.full((n, labels.shape[1]), -1, dtype=np.int64)
    out[at] = labels
    return out


def _arc_group(task, train, evals, layers, combine, seed) -> _Group:
    rows_tr, labels_tr = arc_rows(train, layers, combine, seed)
    scored = [arc_rows(e, layers, combine, seed + 1) for e in evals]
    return _Group([task], rows_tr, labels_tr[:, None], [2], [["no arc", "arc"]],
                  [rows for rows, _ in scored], [labels[:, None] for _, labels in scored])


def _eval_stores(eval) -> tuple[list, Callable[[list[ProbeResult]], Any]]:  # noqa: A002
    """The eval stores of ``probe``'s ``eval`` (one store, a list or a {name: store}
    mapping) and how to hand back their results in the same shape."""
    if isinstance(eval, Mapping):
        if not eval:
            raise ValueError("eval is an empty mapping; pass at least one eval store")
        names = list(eval)
        stores = [store_module.as_store(s, f"eval {n!r}") for n, s in eval.items()]
        return stores, lambda results: dict(zip(names, results, strict=True))
    if isinstance(eval, (list, tuple)):
        if not eval:
            raise ValueError("eval is an empty list; pass at least one eval store")
        return [store_module.as_store(s, f"eval #{i}") for i, s in enumerate(eval)], list
    return [store_module.as_store(eval, "eval")], lambda results: results[0]


def probe(train, eval, tasks=task_module.DEFAULT_TASKS, *, options: ProbeOptions | None = None,  # noqa: A002
          progress: bool = True, **overrides):
    """Trains probes for every layer x task on a train store and scores them on eval stores.

    Args:
        train: a store folder, ``ActivationStore`` or ``ftlens.store.from_arrays(...)``.
        eval: one such store of the same model and row kind, or several as a list or a
            ``{name: store}`` mapping: the probes are trained once and scored on each.
        tasks: task names (see ``ftlens.probes.tasks``): store labels ("upos", "xpos",
            "deprel", "label"), "edge:<label>", "arc", "distance", "depth".
        options: a ``ProbeOptions`` (layers, kind, control, mdl, l2, alphas, folds,
            edge_features, rank, epochs, max_passes, tol, seed, device, chunk_rows);
            keyword arguments override its fields, e.g. ``kind="ridge"``.

    Returns:
        A ProbeResult (accuracy, macro-F1, selectivity, ... as [layers, tasks]) for one eval
        store; a list or a {name: ProbeResult} mapping for several. With control tasks and
        several eval stores, each word type of any store gets its control label once, so the
        control labels (and control accuracy) can differ from those of one store alone.
    """
    o = with_overrides(ProbeOptions, options, **overrides)
    train = store_module.as_store(train, "train")
    evals, shaped = _eval_stores(eval)
    for eval_store in evals:
        _check_pair(train, eval_store)
    layer_ids = _layers(o.layers, train.n_layers)
    resolved = task_module.resolve_tasks(tasks, train, evals, o.control)
    asked = [t for t in resolved if not t.control]
    names = [t.name for t in asked]
    results = [_empty_result(train, e, layer_ids, names, o) for e in evals]
    groups = []
    row_tasks = [t for t in resolved if t.kind == "row"]
    if row_tasks:
        groups.append(_row_group(row_tasks, train, evals, layer_ids, o.seed))
    edge_tasks = [t for t in resolved if t.kind == "edge"]
    if edge_tasks:
        groups.append(_edge_group(edge_tasks, train, evals, layer_ids, o.edge_features, o.seed))
    groups += [_arc_group(t, train, evals, layer_ids, o.edge_features, o.seed)
               for t in resolved if t.kind == "arc"]
    for group in groups:
        trained = _train_group(group, o, progress)
        for i, result in enumerate(results):
            _record(result, group, i, trained, o, names)
    for result in results:
        _finish(result)
    for task in (t for t in resolved if t.kind == "structural"):
        probe_ = train_structural(task.name, train, layer_ids, rank=o.rank, epochs=o.epochs, seed=o.seed,
                                  progress=progress)
        for eval_store, result in zip(evals, results, strict=True):
            for metric, values in evaluate_structural(probe_, eval_store, layer_ids).items():
                result.scores.setdefault(metric, np.full(result.strength.shape, np.nan))[
                    :, names.index(task.name)] = values
    return shaped(results)


def _empty_result(train, eval_store, layer_ids: list[int], names: list[str], o: ProbeOptions) -> ProbeResult:
    shape = (len(layer_ids), len(names))
    n_inputs = int(eval_store.manifest["n_inputs"])
    return ProbeResult(
        model=train.manifest.get("model", ""), layers=[train.manifest["layers"][i] for i in layer_ids],
        tasks=names, kind=o.kind, rows=train.manifest["rows"],
        scores={m: np.full(shape, np.nan) for m in ("accuracy", "macro_f1")}, strength=np.full(shape, np.nan),
        options={k: getattr(o, k) for k in ("control", "mdl", "folds", "edge_features", "seed", "max_passes",
                                            "rank", "epochs")},
        eval_data=eval_store.manifest.get("data_fingerprint", ""),
        by_input={**{name: np.zeros((*shape, n_inputs)) for name in PROPORTIONS},
                  **{f"{name}_rows": np.zeros((len(names), n_inputs)) for name in PROPORTIONS}},
    )


def _record(result: ProbeResult, group: _Group, i: int, trained: _Trained, o: ProbeOptions,
            names: list[str]) -> None:
    """Scores a group's probes on eval store ``i`` into its result."""
    rows, labels = group.evals[i], group.eval_labels[i]
    predicted = trained.probes.predict(rows, o.chunk_rows, o.device)
    outcome = dict(zip(("accuracy", "macro_f1"), scores(predicted, labels, group.widths)[:2], strict=True))
    outcome.update(trained.metrics, strength=trained.strength)
    right, scored = input_counts(predicted, labels, rows.inputs, result.by_input["accuracy"].shape[-1])
    shape = result.strength.shape
    for j, task in enumerate(group.tasks):
        result.n_train[task.name] = int((group.train_labels[:, j] >= 0).sum())
        result.n_eval[task.name] = int((labels[:, j] != -1).sum())
        share = "control_accuracy" if task.control else "accuracy"
        k = names.index(task.name[len("control:"):] if task.control else task.name)
        result.by_input[share][:, k], result.by_input[f"{share}_rows"][k] = right[:, j], scored[j]
        if task.control:
            control = result.scores.setdefault("control_accuracy", np.full(shape, np.nan))
            control[:, k] = outcome["accuracy"][:, j]
            continue
        result.vocabularies[task.name] = group.vocabularies[j]
        unseen = int((labels[:, j] == task_module.UNSEEN).sum())
        result.unseen[task.name] = unseen
        if unseen:
            warnings.warn(f"task {task.name!r}: {unseen} eval rows have labels never seen in training; "
                          "they count as wrong", stacklevel=3)
        for metric, values in outcome.items():
            result.scores.setdefault(metric, np.full(shape, np.nan))[:, k] = values[:, j]


def _finish(result: ProbeResult) -> None:
    """Selectivity where control tasks ran (else no control counts); strength out of the scores."""
    if "control_accuracy" in result.scores:
        result.scores["selectivity"] = result.scores["accuracy"] - result.scores["control_accuracy"]
    else:
        del result.by_input["control_accuracy"], result.by_input["control_accuracy_rows"]
    result.strength = result.scores.pop("strength", result.strength)


def _train_group(group: _Group, o: ProbeOptions, progress: bool) -> _Trained:
    """One group's probes for every layer and task, trained once."""
    kind, l2, seed, max_passes, tol = o.kind, o.l2, o.seed, o.max_passes, o.tol
    chunk_rows, device = o.chunk_rows, o.device
    if kind == "logistic":  # the ridge fit is only the start and the covariance: no cross-validation
        start_alpha = START_L2 * group.train.n
        ridge = fit_ridge(group.train, group.train_labels, group.widths, alphas=(start_alpha,), folds=1,
                          seed=seed, chunk_rows=chunk_rows, progress=progress, desc="ridge start")
    else:
        ridge = fit_ridge(group.train, group.train_labels, group.widths, alphas=o.alphas, folds=o.folds,
                          seed=seed, chunk_rows=chunk_rows, progress=progress)
    n_layers, n_tasks = ridge.alpha.shape
    metrics = {}
    if kind == "ridge":
        probes, strength = ridge.probes, ridge.alpha
    else:
        if l2 is None:
            strength = _choose_l2(group, ridge, seed, max_passes, tol, chunk_rows, device, progress)
        else:
            strength = np.broadcast_to(np.asarray(l2, dtype=np.float64), (n_layers, n_tasks)).copy()
            if np.any(strength <= 0):
                raise ValueError(f"l2 must be positive, got {l2}")
        probes, _ = fit_logistic(group.train, group.train_labels, ridge.probes, strength,
                                 whitening(ridge.cov, strength), max_passes=max_passes, tol=tol,
                                 chunk_rows=chunk_rows, seed=seed, device=device, progress=progress)
    if o.mdl:
        zero = LinearProbes(ridge.probes.shift, ridge.probes.scale, torch.zeros_like(ridge.probes.w),
                            torch.zeros_like(ridge.probes.b), ridge.probes.offsets)
        metrics["mdl_kbits"], metrics["mdl_compression"] = online_codelength(
            group.train, group.train_labels, group.widths, zero, strength, whitening(ridge.cov, strength),
            seed=seed,
            max_passes=max(10, max_passes // 2), chunk_rows=chunk_rows, device=device, progress=progress)
    return _Trained(probes, strength, metrics)


def _choose_l2(group: _Group, ridge, seed, max_passes, tol, chunk_rows, device, progress) -> np.ndarray:
    """The grid value per (layer, task) with the best accuracy on a tenth of the training
    inputs held out (every grid value trained at once, as extra columns)."""
    grid = np.asarray(L2_GRID)
    held = folds_of(group.train.inputs, 10, seed) == 0
    n_tasks = len(group.widths)
    labels = np.where(held[:, None], -1, group.train_labels)
    wide = np.repeat(labels, len(grid), axis=1)  # task-major: (t, g)
    widths = np.repeat(group.widths, len(grid))
    strength = np.tile(grid, n_tasks)[None, :].repeat(ridge.alpha.shape[0], 0)
    bounds = ridge.probes.offsets.tolist()
    columns = np.concatenate([np.arange(bounds[t], bounds[t + 1]) for t in range(n_tasks) for _ in grid])
    start = LinearProbes(ridge.probes.shift, ridge.probes.scale, ridge.probes.w[:, :, columns],
                         ridge.probes.b[:, columns], offsets_of(widths))
    trained, _ = fit_logistic(group.train, wide, start, strength, whitening(ridge.cov, strength),
                              max_passes=max_passes, tol=tol, chunk_rows=chunk_rows, seed=seed,
                              device=device, progress=progress,
                              desc="logistic l2 grid")
    held_rows = ProbeRows(group.train.store, group.train.layers, group.train.first[held],
                     None if group.train.second is None else group.train.second[held], group.train.combine)
    predicted = trained.predict(held_rows, chunk_rows, device)
    accuracy, _, _ = scores(predicted, np.repeat(group.train_labels[held], len(grid), axis=1), widths)
    best = accuracy.reshape(accuracy.shape[0], n_tasks, len(grid)).argmax(2)
    return grid[best]


def available_tasks(store) -> list[str]:
    """The task names a store (folder or object) supports."""
    return task_module.available(store_module.as_store(store, "store"))
