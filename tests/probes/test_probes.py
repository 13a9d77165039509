"""ftlens.probe end to end on synthetic stores: every task kind, control tasks, MDL, the
logistic optimum against scikit-learn, the result's JSON, table and plot, the CLI, and a
clear error for each kind of bad input."""

import json
import subprocess
import sys
import warnings

import ftlens
import numpy as np
import pytest
import torch
from ftlens.probes import tasks as task_module
from ftlens.probes.features import ProbeRows, arc_rows, edge_rows
from ftlens.probes.logistic import fit_logistic, whitening
from ftlens.probes.mdl import _nats, block_bounds
from ftlens.probes.ridge import fit_ridge
from helpers.probe_data import synthetic_sentences, synthetic_store


@pytest.fixture(scope="module")
def stores():
    return synthetic_store(160, seed=0), synthetic_store(60, seed=1)


@pytest.fixture(scope="module")
def result(stores):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ftlens.probe(*stores, tasks=("upos", "edge:deprel", "arc", "distance", "depth"), l2=1e-3,
                            mdl=True, epochs=3, rank=4, progress=False)


def test_probe_result_covers_every_task(result):
    assert result.tasks == ["upos", "edge:deprel", "arc", "distance", "depth"]
    assert result.accuracy.shape == (3, 5) and result.layers == ["embeddings", "layer 1", "layer 2"]
    assert np.argmax(result.accuracy[:, 0]) == 1 and result.accuracy[1, 0] > 0.9  # the layer that holds upos
    assert np.all(np.isfinite(result.accuracy[:, :3])) and np.all(np.isnan(result.accuracy[:, 3:]))
    assert np.all(np.isfinite(result.uuas[:, 3])) and np.all(np.isfinite(result.root_accuracy[:, 4]))
    assert np.all((result.uuas[:, 3] >= 0) & (result.uuas[:, 3] <= 1))
    control = result.control_accuracy[:, 0]
    np.testing.assert_allclose(result.selectivity[:, 0], result.accuracy[:, 0] - control)
    assert np.all(np.isnan(result.control_accuracy[:, 1:]))  # control tasks only for word-level row tasks
    compression = result.mdl_compression
    assert np.all(compression[:, :3] > 0) and compression[1, 0] > compression[0, 0]
    assert result.n_train["arc"] > result.n_train["edge:deprel"]  # gold arcs plus sampled non-arcs
    assert result.vocabularies["upos"] == ["NOUN", "PUNCT", "VERB"]


def test_probe_result_saves_loads_prints_and_plots(result, tmp_path):
    result.save(tmp_path / "probe.json")
    back = ftlens.ProbeResult.load(tmp_path / "probe.json")
    np.testing.assert_array_equal(back.accuracy, result.accuracy)
    np.testing.assert_array_equal(back.strength, result.strength)
    json.loads((tmp_path / "probe.json").read_text())  # standard JSON (NaN written as null)
    table = result.table()
    assert "upos (accuracy)" in table and "distance (uuas)" in table and "layer 1" in table
    (ax,) = result.plot(tmp_path / "probe.png").axes
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG"
    assert ax.get_ylim() == (0.0, 100.0) and ax.get_ylabel() == "score (%)"  # every main metric is a share
    j = result.tasks.index("upos")
    np.testing.assert_allclose(ax.get_lines()[j].get_ydata(), 100 * result.accuracy[:, j])
    assert "/" not in ax.get_title()  # the model's name, not its install path


def test_ridge_kind_and_chosen_strengths(stores):
    ridge = ftlens.probe(*stores, tasks=("upos",), kind="ridge", control=False, alphas=(0.1, 10.0, 1e3),
                         progress=False)
    assert ridge.kind == "ridge" and set(np.unique(ridge.strength)) <= {0.1, 10.0, 1e3}
    assert ridge.accuracy[1, 0] > 0.9
    chosen = ftlens.probe(*stores, tasks=("upos",), control=False, max_passes=30, progress=False)
    assert set(np.unique(chosen.strength)) <= set(ftlens.probes.L2_GRID)


@pytest.mark.parametrize(("sentences", "warmup_lr"), [(150, None), (900, None), (900, 1e9)],
                         ids=["l-bfgs alone", "after warm-up epochs", "after a diverging warm-up"])
def test_logistic_optimum_equals_scikit_learn(monkeypatch, sentences, warmup_lr):
    """The same optimum whether or not minibatch epochs come first (on 4 minibatches of rows
    or more), and when they diverge (those problems start L-BFGS from their start)."""
    from ftlens.probes import logistic
    from sklearn.linear_model import LogisticRegression

    if warmup_lr is not None:
        monkeypatch.setattr(logistic, "WARMUP_LR", warmup_lr)
    states, labels, index = synthetic_sentences(sentences, seed=2, layers=1, dim=6)
    store = ftlens.store.from_arrays(states, labels, index=index)
    codes, _ = store.labels("upos")
    rows = ProbeRows(store, [0], np.arange(store.n_rows))
    l2 = np.full((1, 1), 1e-2)
    ridge = fit_ridge(rows, codes[:, None], [3], progress=False)
    probes, info = fit_logistic(rows, codes[:, None], ridge.probes, l2, whitening(ridge.cov, l2),
                                max_passes=300, tol=1e-9, ftol=1e-13, progress=False)
    assert info.converged.all()
    assert info.epochs == (0 if len(codes) < 4 * logistic.WARMUP_BATCH else logistic.WARMUP_EPOCHS)
    x = states[0].astype(np.float64)
    reference = LogisticRegression(C=1 / (1e-2 * len(x)), tol=1e-10, max_iter=5000).fit(x, codes)
    np.testing.assert_allclose(probes.w[0].numpy(), reference.coef_.T, rtol=1e-4, atol=1e-4)
    logits = (x - probes.shift[0].numpy()) @ probes.w[0].numpy() + probes.b[0].numpy()
    want = reference.decision_function(x)
    np.testing.assert_allclose(logits - logits.mean(1, keepdims=True), want - want.mean(1, keepdims=True),
                               atol=1e-3)


@pytest.mark.parametrize("warmup_lr", [None, 1e9], ids=["default step", "diverging step"])
def test_warm_up_lowers_every_loss_or_keeps_the_start(monkeypatch, warmup_lr):
    from ftlens.probes import logistic

    if warmup_lr is not None:
        monkeypatch.setattr(logistic, "WARMUP_LR", warmup_lr)
    states, labels, index = synthetic_sentences(900, seed=3, layers=2, dim=6)
    store = ftlens.store.from_arrays(states, labels, index=index)
    codes = np.stack([store.labels(name)[0] for name in ("upos", "deprel")], 1)
    rows = ProbeRows(store, [0, 1], np.arange(store.n_rows))
    l2 = np.full((2, 2), 1e-3)
    ridge = fit_ridge(rows, codes, [3, 2], progress=False)
    whiten = whitening(ridge.cov, l2)
    warm = logistic._warm_up(rows, codes, ridge.probes, l2, whiten, np.arange(rows.n), 2, 2048, 0, None,
                             False, "test")

    def loss(probes):
        return _nats(rows, codes, probes, np.arange(rows.n), 8192, None) / len(codes)

    if warmup_lr is None:  # upos is linear in the rows; deprel (from the head's tag) is not
        assert np.all(loss(warm)[:, 0] < loss(ridge.probes)[:, 0] - 1e-2)
        assert np.all(loss(warm)[:, 1] <= loss(ridge.probes)[:, 1] + 1e-3)
    else:
        torch.testing.assert_close(warm.w, ridge.probes.w, rtol=0, atol=0)
        torch.testing.assert_close(warm.b, ridge.probes.b, rtol=0, atol=0)


def test_edge_and_arc_rows_pair_words_of_one_sentence(stores):
    train, _ = stores
    index, heads = train.rows, train.labels("head")[0]
    edges = edge_rows(train, [0], "concat")
    assert np.all(index[edges.first, 0] == index[edges.second, 0])
    assert np.all(index[edges.second, 1] == heads[edges.first] - 1)
    assert edges.n == int((heads > 0).sum())
    arcs, labels = arc_rows(train, [0], "concat", seed=0)
    negative = labels == 0
    assert np.all(index[arcs.first, 0] == index[arcs.second, 0])
    assert np.all(index[arcs.second[negative], 1] != heads[arcs.first[negative]] - 1)
    assert np.all(arcs.first[negative] != arcs.second[negative])
    again, _ = arc_rows(train, [0], "concat", seed=0)
    np.testing.assert_array_equal(again.second, arcs.second)  # seeded
    _, x = next(edges.chunks(16))
    assert x.shape == (1, 16, 2 * train.dim)
    np.testing.assert_array_equal(x[0, 0, train.dim :].numpy(), train.layer(0)[edges.second[0]])


@pytest.mark.parametrize("combine", ["concat", "product", None])
def test_reused_chunk_buffer_reads_the_same_rows(stores, combine):
    train, _ = stores
    rows = edge_rows(train, [0, 2], combine) if combine else ProbeRows(train, [0, 2], np.arange(train.n_rows))
    order = np.random.default_rng(0).permutation(rows.n)  # shuffled: gathers, not slices
    for positions in (None, order):
        fresh = [(pos, x.clone()) for pos, x in rows.chunks(23, positions)]
        reused = [(pos, x.clone()) for pos, x in rows.chunks(23, positions, reuse=True)]
        assert len(fresh) == len(reused) > 1
        for (pos_a, a), (pos_b, b) in zip(fresh, reused, strict=True):
            np.testing.assert_array_equal(pos_a, pos_b)
            assert a.dtype == b.dtype and a.shape == b.shape
            assert torch.equal(a, b)
    first = rows.first[:23]
    x = train.layer(2)[first].astype(np.float32)
    if combine is not None:
        y = train.layer(2)[rows.second[:23]]
        x = np.concatenate([x, y], 1) if combine == "concat" else x * y
    _, got = next(rows.chunks(23, reuse=True))
    np.testing.assert_array_equal(got[1].float().numpy(), x)


def test_control_task_gives_each_word_type_one_label(stores):
    train, evaluation = stores
    task = task_module.ProbeTask("control:upos", "row", "upos", control=True)
    tr, ev, vocab = task_module.row_labels(task, train, [evaluation], seed=0)
    words, word_vocab = train.labels("word")
    for w in np.unique(words):
        assert len(np.unique(tr[words == w])) == 1
    again, _, _ = task_module.row_labels(task, train, [evaluation], seed=0)
    np.testing.assert_array_equal(tr, again)
    other, _, _ = task_module.row_labels(task, train, [evaluation], seed=1)
    assert not np.array_equal(tr, other)
    assert set(np.unique(tr)) <= set(range(len(vocab)))


def test_mdl_blocks():
    assert block_bounds(10000) == [10, 20, 40, 80, 160, 320, 625, 1250, 2500, 5000, 10000]
    assert block_bounds(50)[-1] == 50 and block_bounds(50) == sorted(set(block_bounds(50)))


def test_cli_probe(stores, tmp_path):
    states, labels, index = synthetic_sentences(80, seed=5)
    for name, seed in (("train", 5), ("eval", 6)):
        states, labels, index = synthetic_sentences(80 if name == "train" else 30, seed=seed)
        ftlens.store.from_arrays(states, labels, index=index, model="synthetic", path=tmp_path / name)
    command = [sys.executable, "-m", "ftlens.cli", "probe", str(tmp_path / "train"), str(tmp_path / "eval")]
    out = subprocess.run([*command, "--tasks", "upos", "deprel", "--l2", "0.001", "--no-progress", "--out",
                          str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")],
                         capture_output=True, text=True, check=True)
    assert "upos (accuracy)" in out.stdout and (tmp_path / "r.png").exists()
    assert json.loads((tmp_path / "r.json").read_text())["tasks"] == ["upos", "deprel"]
    bad = subprocess.run([*command, "--tasks", "ner"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown task 'ner'" in bad.stderr
    states, labels, index = synthetic_sentences(20, seed=7)
    ftlens.store.from_arrays(states, labels, index=index, model="synthetic", path=tmp_path / "ood")
    both = subprocess.run([*command, str(tmp_path / "ood"), "--tasks", "upos", "--l2", "0.001",
                           "--no-progress", "--out", str(tmp_path / "r.json")],
                          capture_output=True, text=True, check=True)
    assert "== eval store eval ==" in both.stdout and "== eval store ood ==" in both.stdout
    alone = json.loads((tmp_path / "r.json").read_text())
    again = json.loads((tmp_path / "r-eval.json").read_text())
    assert again["scores"]["accuracy"] == [row[:1] for row in alone["scores"]["accuracy"]]
    assert json.loads((tmp_path / "r-ood.json").read_text())["tasks"] == ["upos"]


# ---- bad input: one test each ----

def test_label_count_differs_from_rows():
    states, labels, index = synthetic_sentences(10, seed=0)
    labels["upos"] = labels["upos"][:-1]
    with pytest.raises(ValueError, match="label 'upos' has .* values for .* rows"):
        ftlens.store.from_arrays(states, labels, index=index)


def test_task_with_one_class(stores):
    states, labels, index = synthetic_sentences(20, seed=0)
    labels["upos"] = np.full(len(index), "NOUN")
    one = ftlens.store.from_arrays(states, labels, index=index, model="synthetic")
    with pytest.raises(ValueError, match="task 'upos' has 1 class"):
        ftlens.probe(one, stores[1], tasks=("upos",), progress=False)


def test_unknown_task_lists_the_available_ones(stores):
    with pytest.raises(ValueError, match=r"unknown task 'ner'.*available: \['upos', 'deprel', 'edge:upos'"):
        ftlens.probe(*stores, tasks=("ner",), progress=False)


def test_eval_labels_never_seen_in_training_count_as_wrong(stores):
    train, _ = stores
    states, labels, index = synthetic_sentences(30, seed=3)
    labels["upos"] = np.where(labels["upos"] == "VERB", "X", labels["upos"])  # a tag training never had
    evaluation = ftlens.store.from_arrays(states, labels, index=index, model="synthetic")
    with pytest.warns(UserWarning, match=r"task 'upos': \d+ eval rows have labels never seen in training"):
        result = ftlens.probe(train, evaluation, tasks=("upos",), control=False, l2=1e-3, progress=False)
    unseen = int((labels["upos"] == "X").sum())
    assert result.unseen["upos"] == unseen and result.n_eval["upos"] == len(index)
    assert result.accuracy[1, 0] <= 1 - unseen / len(index) + 1e-12


def test_edge_and_structural_tasks_need_words_and_heads(stores):
    states, labels, index = synthetic_sentences(20, seed=0)
    del labels["head"]
    headless = ftlens.store.from_arrays(states, labels, index=index, model="synthetic")
    for task in ("edge:deprel", "arc", "distance", "depth"):
        with pytest.raises(ValueError, match=f"task '{task}' needs a store with rows='words' and a 'head'"):
            ftlens.probe(headless, headless, tasks=(task,), progress=False)
    states, labels, index = synthetic_sentences(20, seed=0)
    sentences = ftlens.store.from_arrays(states, labels, rows="cls", index=index, model="synthetic")
    with pytest.raises(ValueError, match="needs a store with rows='words'"):
        ftlens.probe(sentences, sentences, tasks=("distance",), progress=False)


def test_nan_rows_are_named_with_layer_and_row(stores):
    states, labels, index = synthetic_sentences(20, seed=0)
    states[2, 17, 3] = np.nan
    broken = ftlens.store.from_arrays(states, labels, index=index, model="synthetic")
    with pytest.raises(ValueError, match=r"layer 2 \(layer 2\), store row 17 \(input \d+, word \d+\) holds"):
        ftlens.probe(broken, stores[1], tasks=("upos",), progress=False)


def test_train_and_eval_from_different_models_or_row_kinds(stores):
    states, labels, index = synthetic_sentences(20, seed=0)
    other = ftlens.store.from_arrays(states, labels, index=index, model="another")
    with pytest.raises(ValueError, match="different models"):
        ftlens.probe(stores[0], other, tasks=("upos",), progress=False)
    tokens = ftlens.store.from_arrays(states, labels, rows="tokens", index=index, model="synthetic")
    with pytest.raises(ValueError, match="different row kinds"):
        ftlens.probe(stores[0], tokens, tasks=("upos",), progress=False)


def test_store_whose_files_do_not_match_its_manifest(tmp_path, stores):
    states, labels, index = synthetic_sentences(20, seed=0)
    ftlens.store.from_arrays(states, labels, index=index, model="synthetic", path=tmp_path / "s")
    np.save(tmp_path / "s" / "labels" / "upos.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"upos.npy: holds int64 \(3,\), expected int64"):
        ftlens.probe(tmp_path / "s", stores[1], tasks=("upos",), progress=False)


def test_from_arrays_on_disk_reads_back_the_same(tmp_path):
    states, labels, index = synthetic_sentences(30, seed=0)
    on_disk = ftlens.store.from_arrays(states, labels, index=index, path=tmp_path / "s", dtype="float16")
    on_disk.verify()
    np.testing.assert_array_equal(on_disk.layer(1), states[1].astype(np.float16))
    np.testing.assert_array_equal(on_disk.rows, index)
    codes, vocab = on_disk.labels("upos")
    assert [vocab[c] for c in codes] == labels["upos"].tolist()
    with pytest.raises(ValueError, match="already holds a store"):
        ftlens.store.from_arrays(states, labels, index=index, path=tmp_path / "s")


def test_logistic_runs_on_torch_tensors_of_either_device_choice(stores):
    cpu = ftlens.probe(*stores, tasks=("upos",), control=False, l2=1e-3, device="cpu", progress=False)
    default = ftlens.probe(*stores, tasks=("upos",), control=False, l2=1e-3, progress=False)
    np.testing.assert_array_equal(cpu.accuracy, default.accuracy)
    assert torch.tensor(cpu.accuracy).shape == (3, 1)


def test_sentence_label_task_on_cls_rows():
    rng = np.random.default_rng(0)
    n = 300
    label = rng.integers(0, 3, n)
    states = rng.normal(size=(2, n, 6)).astype(np.float32)
    states[1, :, :3] += 3.0 * np.eye(3)[label]
    names = np.array(["entailment", "neutral", "contradiction"])[label]
    train = ftlens.store.from_arrays(states[:, :200], {"label": names[:200]}, rows="cls", model="m")
    evaluation = ftlens.store.from_arrays(states[:, 200:], {"label": names[200:]}, rows="cls", model="m")
    assert ftlens.probes.available_tasks(train) == ["label"]
    result = ftlens.probe(train, evaluation, tasks=("label",), l2=1e-3, progress=False)
    assert result.rows == "cls" and "control_accuracy" not in result.scores  # no word types to control
    assert result.accuracy[1, 0] > 0.8 > result.accuracy[0, 0]


@pytest.mark.parametrize("option, value, message", [
    ("l2", float("nan"), "l2 must hold finite positive numbers"),
    ("l2", "strong", "l2 must be a positive number or an array of them"),
    ("alphas", [1.0, float("inf")], "alphas must hold finite positive numbers"),
    ("tol", float("nan"), "tol must be a finite number > 0"),
    ("rank", 2.5, "rank must be a positive integer"),
    ("epochs", 0, "epochs must be a positive integer"),
    ("seed", -1, "seed must be an integer >= 0"),
    ("mdl", "yes", "mdl must be true or false"),
])
def test_probe_options_are_checked_before_any_pass(stores, option, value, message):
    with pytest.raises(ValueError, match=message):
        ftlens.probe(*stores, tasks=("upos",), progress=False, **{option: value})
