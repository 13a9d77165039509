"""Probes: ftlens' batched trainers against loops of scikit-learn fits over the same
(layer, task) pairs, on MiniLM activations of >= 100,000 EWT train words (scored on EWT
dev), and probing out of core (1,000,000 rows)."""

import ftlens
import numpy as np
import pytest
from conftest import report, timed, timed_isolated
from ewt_stores import ewt_store
from ftlens.probes import tasks as task_module
from ftlens.probes.api import _edge_group, _row_group

WORDS = 100_000
L2 = 1e-4  # on the mean loss; scikit-learn's C = 1 / (L2 n)
ALPHAS = tuple(10.0 ** np.arange(-1, 6))
TASKS = ("upos", "xpos", "edge:deprel")  # + control tasks of upos and xpos


@pytest.fixture(scope="module")
def stores():
    return ewt_store("train", WORDS), ewt_store("dev")


def _groups(train, evaluation):
    """(task name, train rows, train labels, eval rows, eval labels) as ftlens.probe builds them."""
    layers = list(range(train.n_layers))
    rows = [task_module.ProbeTask(n, "row", n) for n in ("upos", "xpos")]
    rows += [task_module.ProbeTask(f"control:{t.name}", "row", t.label, control=True) for t in rows]
    out = []
    for group in (_row_group(rows, train, [evaluation], layers, 0),
                  _edge_group([task_module.ProbeTask("edge:deprel", "edge", "deprel")], train, [evaluation],
                              layers, "concat", 0)):
        for j, task in enumerate(group.tasks):
            out.append((task.name, group.train, group.train_labels[:, j], group.evals[0],
                        group.eval_labels[0][:, j]))
    return out


def _features(rows, layer):
    x = rows.store.layer(layer)[rows.first].astype(np.float32)
    return x if rows.second is None else np.concatenate([x, rows.store.layer(layer)[rows.second]], 1)


def sklearn_loop(train_path, eval_path, kind):
    """Every (layer, task) fitted and scored one after another, features in RAM:
    {(layer, task): accuracy}."""
    from sklearn.linear_model import LogisticRegression, RidgeClassifierCV

    train, evaluation = ftlens.store.read(train_path), ftlens.store.read(eval_path)
    out = {}
    for name, tr_rows, tr_labels, ev_rows, ev_labels in _groups(train, evaluation):
        for layer in range(train.n_layers):
            x = _features(tr_rows, layer)
            if kind == "logistic":
                model = LogisticRegression(C=1 / (L2 * len(x)))
            else:
                model = RidgeClassifierCV(alphas=ALPHAS, cv=5)
            model.fit(x, tr_labels)
            keep = ev_labels != -1
            predicted = model.predict(_features(ev_rows, layer)[keep])
            out[layer, name] = float(np.mean(predicted == ev_labels[keep]))
    return out


def _compare(result, reference):
    gaps = {}
    for (layer, name), want in reference.items():
        if name.startswith("control:"):
            got = result.control_accuracy[layer, result.tasks.index(name[len("control:"):])]
        else:
            got = result.accuracy[layer, result.tasks.index(name)]
        gaps[layer, name] = got - want
    return gaps


@pytest.mark.parametrize("kind", ["logistic", "ridge"])
def test_probe_speed_vs_sklearn_loop(benchmark, stores, kind):
    train, evaluation = stores
    options = dict(l2=L2, max_passes=6) if kind == "logistic" else dict(alphas=ALPHAS, folds=5)
    seconds, result = benchmark.pedantic(
        lambda: timed(ftlens.probe, train, evaluation, tasks=TASKS, kind=kind, progress=False, **options),
        rounds=1, iterations=1)
    anchor_seconds, reference = timed_isolated(sklearn_loop, str(train.path), str(evaluation.path), kind)
    gaps = _compare(result, reference)
    worst = max(gaps, key=lambda k: abs(gaps[k]))
    ratio = anchor_seconds / seconds
    benchmark.extra_info.update(ratio=ratio, ftlens_s=seconds, sklearn_s=anchor_seconds,
                                worst_gap=gaps[worst])
    report(f"probe {kind}: 7 layers x (upos, xpos, edge:deprel + 2 controls) on {train.n_rows} EWT words",
           ftlens_s=f"{seconds:.1f}", sklearn_loop_s=f"{anchor_seconds:.1f}", ratio=f"{ratio:.1f}x",
           worst_gap=f"{100 * gaps[worst]:+.2f} points at {worst}",
           mean_abs_gap=f"{100 * np.mean(np.abs(list(gaps.values()))):.2f} points")
    assert train.n_rows >= WORDS
    assert abs(gaps[worst]) <= 0.005  # equal accuracy within 0.5 point on every (layer, task)
    # the targets (5 warm-up epochs + 6 passes of L-BFGS for the logistic probes)
    assert ratio >= (20 if kind == "ridge" else 10)


OUT_OF_CORE = """
import json, sys, time
sys.path.insert(0, "bench")
from conftest import PeakRssAnon
import ftlens
train, evaluation, kind = sys.argv[1:4]
train, evaluation = ftlens.store.read(train), ftlens.store.read(evaluation)
with PeakRssAnon() as peak:
    start = time.perf_counter()
    result = ftlens.probe(train, evaluation, tasks=("upos", "xpos"), kind=kind, l2=1e-4, max_passes=10,
                          progress=False)
    seconds = time.perf_counter() - start
print(json.dumps({"growth": peak.growth, "seconds": seconds, "accuracy": result.accuracy.tolist()}))
"""


@pytest.fixture(scope="module")
def million_rows():
    """EWT train activations repeated 5 times: >= 1,000,000 rows x 7 layers x 384, float16."""
    from ewt_stores import FOLDER

    path = FOLDER / "ewt_train_x5"
    if not (path / "manifest.json").exists():
        base = ewt_store("train")
        repeat = 5
        index = base.rows.copy()
        shift = index[:, 0].max() + 1
        index = np.concatenate([index + [k * shift, 0] for k in range(repeat)])
        labels = {}
        for name in ("upos", "xpos", "head", "word"):
            codes, vocab = base.labels(name)
            values = codes if vocab is None else np.asarray(vocab, dtype=object)[codes]
            labels[name] = np.tile(values, repeat)
        layers = [np.tile(np.asarray(base.layer(i)), (repeat, 1)) for i in range(base.n_layers)]
        ftlens.store.from_arrays(layers, labels, index=index, model=base.manifest["model"], path=path,
                                 dtype="float16")
        manifest = ftlens.store.read(path).manifest
        manifest["model_fingerprint"] = base.manifest["model_fingerprint"]  # the same model's activations
        ftlens._util.files.write_json(path / "manifest.json", manifest)
    return ftlens.store.read(path), ewt_store("dev")


@pytest.mark.parametrize("kind", ["ridge", "logistic"])
def test_probe_out_of_core(benchmark, million_rows, kind):
    """Peak anonymous memory growth of probing 1,000,000+ rows in a fresh process."""
    import json
    import subprocess
    import sys

    train, evaluation = million_rows

    def run():
        out = subprocess.run([sys.executable, "-c", OUT_OF_CORE, str(train.path), str(evaluation.path), kind],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    measured = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(measured)
    size = train.n_rows * train.n_layers * train.dim * 2
    report(f"probe {kind} out of core: {train.n_rows} rows x {train.n_layers} x {train.dim} float16 "
           f"({size / 2**30:.1f} GiB), upos + xpos + controls", seconds=f"{measured['seconds']:.0f}",
           growth_mb=f"{measured['growth'] / 2**20:.0f}",
           best_upos=f"{100 * max(row[0] for row in measured['accuracy']):.1f}")
    assert train.n_rows >= 1_000_000
    assert measured["growth"] < 2 * 2**30


def test_two_eval_stores_cost_about_one(benchmark):
    """The default probe call (L2 from the grid, control tasks) trained on 25,000 EWT train
    words and scored on EWT dev, against the same call scored on EWT dev and test: one
    training either way, so the second eval store costs only its scoring."""
    train, dev, test = ewt_store("train", 25_000), ewt_store("dev"), ewt_store("test")
    options = {"tasks": ("upos",), "progress": False}
    times = {"one": [], "two": []}
    for _ in range(2):  # interleaved, so that a busy moment slows both
        seconds, one = timed(ftlens.probe, train, dev, **options)
        times["one"].append(seconds)
        seconds, two = timed(ftlens.probe, train, [dev, test], **options)
        times["two"].append(seconds)
    benchmark.pedantic(ftlens.probe, args=(train, dev), kwargs=options, rounds=1, iterations=1)
    ratio = min(times["two"]) / min(times["one"])
    report("probe, two eval stores", train_rows=train.n_rows, dev_rows=dev.n_rows,
           test_rows=test.n_rows, one_eval_s=f"{min(times['one']):.1f}",
           two_evals_s=f"{min(times['two']):.1f}", ratio=f"{ratio:.3f}")
    benchmark.extra_info.update(ratio=ratio)
    np.testing.assert_array_equal(two[0].accuracy, one.accuracy)
    assert ratio <= 1.1
