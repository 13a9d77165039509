"""``ftlens.probe``: every layer x every task of a store, in few passes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

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
    """Tasks that share feature rows: their train and eval rows and labels [n, T]."""

    tasks: list[task_module.ProbeTask]
    train: ProbeRows
    eval: ProbeRows
    train_labels: np.ndarray
    eval_labels: np.ndarray
    widths: list[int]
    vocabularies: list[list]


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


def _row_group(row_tasks, train, eval_store, layers, seed) -> _Group:
    train_cols, eval_cols, vocabularies = [], [], []
    for task in row_tasks:
        tr, ev, vocab = task_module.row_labels(task, train, eval_store, seed)
        if len(tr) != train.n_rows or len(ev) != eval_store.n_rows:
            raise ValueError(f"label {task.label!r} has {len(tr)} / {len(ev)} values for {train.n_rows} / "
                             f"{eval_store.n_rows} rows (train / eval); the store's label files are damaged")
        _check_classes(task, tr, vocab)
        train_cols.append(tr)
        eval_cols.append(ev)
        vocabularies.append(vocab)
    train_labels, eval_labels = np.stack(train_cols, 1), np.stack(eval_cols, 1)
    keep_train = np.flatnonzero((train_labels >= 0).all(1))
    keep_eval = np.flatnonzero((eval_labels != -1).any(1))
    return _Group(row_tasks, ProbeRows(train, layers, keep_train), ProbeRows(eval_store, layers, keep_eval),
                  train_labels[keep_train], eval_labels[keep_eval], [len(v) for v in vocabularies],
                  vocabularies)


def _edge_group(edge_tasks, train, eval_store, layers, combine, seed) -> _Group:
    rows_tr, rows_ev = edge_rows(train, layers, combine), edge_rows(eval_store, layers, combine)
    group = _row_group([task_module.ProbeTask(t.name, "row", t.label) for t in edge_tasks], train, eval_store,
                       layers, seed)
    tr_labels = _full(group.train_labels, group.train.first, train.n_rows)[rows_tr.first]
    ev_labels = _full(group.eval_labels, group.eval.first, eval_store.n_rows)[rows_ev.first]
    keep = (tr_labels >= 0).all(1)
    rows_tr = ProbeRows(train, layers, rows_tr.first[keep], rows_tr.second[keep], combine)
    return _Group(edge_tasks, rows_tr, rows_ev, tr_labels[keep], ev_labels, group.widths, group.vocabularies)


def _full(labels: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    out = np.full((n, labels.shape[1]), -1, dtype=np.int64)
    out[at] = labels
    return out


def _arc_group(task, train, eval_store, layers, combine, seed) -> _Group:
    rows_tr, labels_tr = arc_rows(train, layers, combine, seed)
    rows_ev, labels_ev = arc_rows(eval_store, layers, combine, seed + 1)
    return _Group([task], rows_tr, rows_ev, labels_tr[:, None], labels_ev[:, None], [2], [["no arc", "arc"]])


def probe(train, eval, tasks=task_module.DEFAULT_TASKS, *, options: ProbeOptions | None = None,  # noqa: A002
          progress: bool = True, **overrides) -> ProbeResult:
    """Trains probes for every layer x task on a train store and scores them on an eval store.

    Args:
        train, eval: store folders, ``ActivationStore``s or ``ftlens.store.from_arrays(...)``
            of the same model and row kind.
        tasks: task names (see ``ftlens.probes.tasks``): store labels ("upos", "xpos",
            "deprel", "label"), "edge:<label>", "arc", "distance", "depth".
        options: a ``ProbeOptions`` (layers, kind, control, mdl, l2, alphas, folds,
            edge_features, rank, epochs, max_passes, tol, seed, device, chunk_rows);
            keyword arguments override its fields, e.g. ``kind="ridge"``.

    Returns:
        ProbeResult with accuracy, macro-F1, selectivity, ... as [layers, tasks].
    """
    o = with_overrides(ProbeOptions, options, **overrides)
    train, eval_store = store_module.as_store(train, "train"), store_module.as_store(eval, "eval")
    _check_pair(train, eval_store)
    layer_ids = _layers(o.layers, train.n_layers)
    resolved = task_module.resolve_tasks(tasks, train, eval_store, o.control)
    asked = [t for t in resolved if not t.control]
    names = [t.name for t in asked]
    shape = (len(layer_ids), len(asked))
    result = ProbeResult(
        model=train.manifest.get("model", ""), layers=[train.manifest["layers"][i] for i in layer_ids],
        tasks=names, kind=o.kind, rows=train.manifest["rows"],
        scores={m: np.full(shape, np.nan) for m in ("accuracy", "macro_f1")}, strength=np.full(shape, np.nan),
        options={k: getattr(o, k) for k in ("control", "mdl", "folds", "edge_features", "seed", "max_passes",
                                            "rank", "epochs")},
    )
    groups = []
    row_tasks = [t for t in resolved if t.kind == "row"]
    if row_tasks:
        groups.append(_row_group(row_tasks, train, eval_store, layer_ids, o.seed))
    edge_tasks = [t for t in resolved if t.kind == "edge"]
    if edge_tasks:
        groups.append(_edge_group(edge_tasks, train, eval_store, layer_ids, o.edge_features, o.seed))
    groups += [_arc_group(t, train, eval_store, layer_ids, o.edge_features, o.seed)
               for t in resolved if t.kind == "arc"]
    control_accuracy = {}
    n_inputs = int(eval_store.manifest["n_inputs"])
    result.eval_data = eval_store.manifest.get("data_fingerprint", "")
    result.by_input = {name: np.zeros((len(layer_ids), len(asked), n_inputs)) for name in PROPORTIONS}
    result.by_input.update({f"{name}_rows": np.zeros((len(asked), n_inputs)) for name in PROPORTIONS})
    for group in groups:
        outcome, (right, scored) = _probe_group(group, o, n_inputs, progress)
        for j, task in enumerate(group.tasks):
            result.n_train[task.name] = int((group.train_labels[:, j] >= 0).sum())
            result.n_eval[task.name] = int((group.eval_labels[:, j] != -1).sum())
            unseen = int((group.eval_labels[:, j] == task_module.UNSEEN).sum())
            share = "control_accuracy" if task.control else "accuracy"
            k = names.index(task.name[len("control:"):] if task.control else task.name)
            result.by_input[share][:, k], result.by_input[f"{share}_rows"][k] = right[:, j], scored[j]
            if task.control:
                control_accuracy[task.name[len("control:"):]] = outcome["accuracy"][:, j]
                continue
            result.vocabularies[task.name] = group.vocabularies[j]
            result.unseen[task.name] = unseen
            if unseen:
                warnings.warn(f"task {task.name!r}: {unseen} eval rows have labels never seen in training; "
                              "they count as wrong", stacklevel=2)
            for metric, values in outcome.items():
                result.scores.setdefault(metric, np.full(shape, np.nan))[:, k] = values[:, j]
    if not control_accuracy:
        del result.by_input["control_accuracy"], result.by_input["control_accuracy_rows"]
    else:
        result.scores["control_accuracy"] = np.full(shape, np.nan)
        for name, values in control_accuracy.items():
            result.scores["control_accuracy"][:, names.index(name)] = values
        result.scores["selectivity"] = result.scores["accuracy"] - result.scores["control_accuracy"]
    result.strength = result.scores.pop("strength", result.strength)
    for task in (t for t in resolved if t.kind == "structural"):
        probe_ = train_structural(task.name, train, layer_ids, rank=o.rank, epochs=o.epochs, seed=o.seed,
                                  progress=progress)
        for metric, values in evaluate_structural(probe_, eval_store, layer_ids).items():
            result.scores.setdefault(metric, np.full(shape, np.nan))[:, names.index(task.name)] = values
    return result


def _probe_group(group: _Group, o: ProbeOptions, n_inputs: int,
                 progress: bool) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """({metric: [L, T]}, per-input counts) for one group: accuracy, macro_f1, strength
    (and MDL); the rows right [L, T, n_inputs] and scored [T, n_inputs] per eval input."""
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
    out = {}
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
    predicted = probes.predict(group.eval, chunk_rows, device)
    out["accuracy"], out["macro_f1"], _ = scores(predicted, group.eval_labels, group.widths)
    out["strength"] = strength
    counts = input_counts(predicted, group.eval_labels, group.eval.inputs, n_inputs)
    if o.mdl:
        zero = LinearProbes(ridge.probes.shift, ridge.probes.scale, torch.zeros_like(ridge.probes.w),
                            torch.zeros_like(ridge.probes.b), ridge.probes.offsets)
        out["mdl_kbits"], out["mdl_compression"] = online_codelength(
            group.train, group.train_labels, group.widths, zero, strength, whitening(ridge.cov, strength),
            seed=seed,
            max_passes=max(10, max_passes // 2), chunk_rows=chunk_rows, device=device, progress=progress)
    return out, counts


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
