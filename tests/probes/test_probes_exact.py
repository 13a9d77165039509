"""Probe math against float64 brute force: ridge for every strength, K-fold CV against
explicit refits, the fused logistic op against autograd, spanning trees, tree distances."""

import itertools

import ftlens
import numpy as np
import pytest
import torch
from ftlens._core import _C
from ftlens.probes.ridge import fit_ridge
from ftlens.probes.structural import gold_edges, minimum_spanning_edges, tree_depths, tree_distances
from helpers.data import offset_data


def _ridge_reference(x, y, alpha):
    """Centered ridge in float64: (w, b) minimizing |y - x w - b|² + alpha |w|²."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return w, my - mx @ w


def _one_hot(labels, widths):
    return np.concatenate([np.eye(k)[labels[:, t]] for t, k in enumerate(widths)], 1)


@pytest.fixture(scope="module")
def ridge_case():
    x, _ = offset_data(n=240, p=7, q=3, seed=3, offset=1e3)
    rng = np.random.default_rng(0)
    labels = np.stack([np.argmax(x[:, :3] - x[:, :3].mean(0), 1), rng.integers(0, 4, len(x))], 1)
    fold = rng.integers(0, 4, len(x))
    xs = torch.from_numpy(np.stack([x, 2 * x + 1]))
    core = _C.RidgeCore(2, 7, 7, 4)
    offsets = torch.tensor([0, 3, 7])
    for start in range(0, len(x), 50):  # streamed in chunks
        part = slice(start, start + 50)
        core.update(xs[:, part], torch.from_numpy(labels[part]), offsets, torch.from_numpy(fold[part]))
    return core, xs.numpy(), labels, fold, offsets


@pytest.mark.parametrize("alpha", [1e-3, 0.5, 10.0, 1e4])
def test_ridge_solution_equals_a_float64_solve_for_every_strength(ridge_case, alpha):
    core, xs, labels, _, offsets = ridge_case
    w, b = core.solve(torch.full((2, 2), alpha), offsets)
    y = _one_hot(labels, [3, 4])
    for layer in range(2):
        want_w, want_b = _ridge_reference(xs[layer], y, alpha)
        np.testing.assert_allclose(w[layer].numpy(), want_w, rtol=1e-6, atol=1e-9 * np.abs(want_w).max())
        np.testing.assert_allclose(b[layer].numpy(), want_b, rtol=1e-6, atol=1e-6)


def test_ridge_per_task_strengths(ridge_case):
    core, xs, labels, _, offsets = ridge_case
    w, _ = core.solve(torch.tensor([[0.1, 100.0], [5.0, 5.0]], dtype=torch.float64), offsets)
    want, _ = _ridge_reference(xs[0], _one_hot(labels, [3, 4]), 100.0)
    np.testing.assert_allclose(w[0, :, 3:].numpy(), want[:, 3:], rtol=1e-6)


def test_streamed_kfold_cv_equals_explicit_refits(ridge_case):
    core, xs, labels, fold, offsets = ridge_case
    alphas = [0.01, 1.0, 300.0]
    errors = core.cv_errors(torch.tensor(alphas, dtype=torch.float64), offsets).numpy()  # [L, K, A, T]
    y = _one_hot(labels, [3, 4])
    for layer, f, (a, alpha) in itertools.product(range(2), range(4), enumerate(alphas)):
        train, held = fold != f, fold == f
        w, b = _ridge_reference(xs[layer][train], y[train], alpha)
        residual = (y[held] - xs[layer][held] @ w - b) ** 2
        want = [residual[:, :3].sum(), residual[:, 3:].sum()]
        np.testing.assert_allclose(errors[layer, f, a], want, rtol=1e-7)


def test_one_fold_ridge_takes_every_row_without_cross_validation(ridge_case):
    _, xs, labels, _, offsets = ridge_case
    core = _C.RidgeCore(2, 7, 7, 1)
    for start in range(0, xs.shape[1], 50):
        part = slice(start, start + 50)
        core.update(torch.from_numpy(xs[:, part]), torch.from_numpy(labels[part]), offsets,
                    torch.zeros(len(labels[part]), dtype=torch.int64))
    w, b = core.solve(torch.full((2, 2), 3.0), offsets)
    mean, cov = core.feature_moments()
    for layer in range(2):
        want_w, want_b = _ridge_reference(xs[layer], _one_hot(labels, [3, 4]), 3.0)
        np.testing.assert_allclose(w[layer].numpy(), want_w, rtol=1e-6, atol=1e-9 * np.abs(want_w).max())
        np.testing.assert_allclose(b[layer].numpy(), want_b, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(cov[layer].numpy(), np.cov(xs[layer].T, bias=True), rtol=1e-9)
    with pytest.raises(ValueError, match="needs cross-validation: pass folds >= 2"):
        fit_ridge(None, labels, [3, 4], alphas=(1.0, 2.0), folds=1)


def test_ridge_refuses_labels_beyond_a_task():
    core = _C.RidgeCore(1, 3, 4, 2)
    with pytest.raises(ValueError, match="beyond its task"):
        core.update(torch.randn(1, 5, 3), torch.tensor([[0, 2]] * 5), torch.tensor([0, 2, 4]),
                    torch.zeros(5, dtype=torch.int64))


def _autograd_reference(xs, shift, scale, w, b, labels, offsets):
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    z = (xs - shift[:, None]) * scale[:, None]
    logits = torch.baddbmm(b[:, None], z, w)
    losses = []
    for t in range(labels.shape[1]):
        part, y = logits[:, :, offsets[t] : offsets[t + 1]], labels[:, t]
        keep = y >= 0
        xent = torch.nn.functional.cross_entropy
        per_layer = [xent(part[layer, keep], y[keep], reduction="sum") for layer in range(len(xs))]
        losses.append(torch.stack(per_layer))
    loss = torch.stack(losses, 1)
    loss.sum().backward()
    return loss.detach(), w.grad, b.grad


def test_fused_logistic_op_equals_autograd_in_float64():
    rng = torch.Generator().manual_seed(1)
    layers, m, d = 3, 70, 9
    xs = torch.randn(layers, m, d, generator=rng, dtype=torch.float64) * 2 + 40  # large offsets
    shift, scale = xs.mean(1), 1 / xs.std(1)
    offsets = torch.tensor([0, 4, 6, 11])
    labels = torch.stack([torch.randint(0, k, (m,), generator=rng) for k in (4, 2, 5)], 1)
    labels[::7, 1] = -1  # rows without a label for task 1
    w = torch.randn(layers, d, 11, generator=rng, dtype=torch.float64)
    b = torch.randn(layers, 11, generator=rng, dtype=torch.float64)
    loss, grad_w, grad_b = _C.logistic_loss_grad(xs, shift, scale, w, b, labels, offsets)
    want_loss, want_w, want_b = _autograd_reference(xs, shift, scale, w, b, labels, offsets)
    np.testing.assert_allclose(loss.numpy(), want_loss.numpy(), rtol=1e-9)
    np.testing.assert_allclose(grad_w.numpy(), want_w.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grad_b.numpy(), want_b.numpy(), rtol=1e-9, atol=1e-9)


def test_fused_logistic_op_in_float32_and_float16_rows():
    rng = torch.Generator().manual_seed(2)
    xs = torch.randn(2, 50, 6, generator=rng, dtype=torch.float64) + 10
    shift, scale = xs.mean(1), 1 / xs.std(1)
    w, b = torch.randn(2, 6, 3, dtype=torch.float64, generator=rng), torch.zeros(2, 3, dtype=torch.float64)
    labels, offsets = torch.randint(0, 3, (50, 1), generator=rng), torch.tensor([0, 3])
    want = _C.logistic_loss_grad(xs, shift, scale, w, b, labels, offsets)
    got = _C.logistic_loss_grad(xs.float(), shift, scale, w, b, labels, offsets)
    for a, e in zip(got, want, strict=True):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-5, atol=1e-5)
    half = xs.half()  # the store's dtype: same as float64 rows rounded to float16
    want = _C.logistic_loss_grad(half.double(), shift, scale, w, b, labels, offsets)
    got = _C.logistic_loss_grad(half, shift, scale, w, b, labels, offsets)
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), rtol=1e-5)


def test_fused_op_with_a_reused_scratch_equals_fresh_buffers():
    rng = torch.Generator().manual_seed(3)
    scratch = _C.Scratch()
    for m, d in ((40, 6), (90, 6), (17, 6), (40, 11)):  # buffers grow, shrink and change shape
        xs = (torch.randn(2, m, d, generator=rng) * 3 + 20).half()
        shift, scale = xs.double().mean(1), 1 / xs.double().std(1)
        w = torch.randn(2, d, 5, dtype=torch.float64, generator=rng)
        b = torch.randn(2, 5, dtype=torch.float64, generator=rng)
        labels = torch.stack([torch.randint(0, 2, (m,)), torch.randint(0, 3, (m,))], 1)
        offsets = torch.tensor([0, 2, 5])
        for got, want in zip(_C.logistic_loss_grad(xs, shift, scale, w, b, labels, offsets, scratch),
                             _C.logistic_loss_grad(xs, shift, scale, w, b, labels, offsets), strict=True):
            assert torch.equal(got, want)
        assert torch.equal(_C.linear_predict(xs, shift, scale, w, b, offsets, scratch),
                           _C.linear_predict(xs, shift, scale, w, b, offsets))


def test_float32_softmax_is_within_a_few_ulp_of_float64():
    """The float32 exponentials (8 lanes wide where the processor has AVX2) across exp's
    whole range, down to logits 100 below the row's largest."""
    rng = torch.Generator().manual_seed(4)
    logits = -torch.rand(2, 5000, 24, generator=rng, dtype=torch.float64) * 100
    logits[:, :, [0, 7]] = 0  # each task's largest logit: logit - largest is then exact in float32
    labels, offsets = torch.stack([torch.randint(0, 7, (5000,)), torch.randint(0, 17, (5000,))], 1), \
        torch.tensor([0, 7, 24])
    got = logits.float()
    loss = _C.softmax_xent(got, labels, offsets)
    want = logits.float().double()  # the same float32 inputs, in float64
    want_loss = _C.softmax_xent(want, labels, offsets)
    label_column = torch.zeros(24, 5000, dtype=torch.bool)
    label_column[labels[:, 0], torch.arange(5000)] = True
    label_column[7 + labels[:, 1], torch.arange(5000)] = True
    label_column = label_column.T.expand_as(want)  # there the gradient is p - 1: compared absolutely
    tiny = want.abs() < 1.2e-38 * 2**8  # exp below float's normals is 0 or subnormal in float32
    error = (got.double() - want).abs()
    assert (error / want.abs())[~tiny & ~label_column].max() < 4e-7  # 3 ulp: exp within 2, the normalization
    assert error[tiny].max() < 1e-35
    assert error[label_column].max() < 1.2e-7
    np.testing.assert_allclose(loss.numpy(), want_loss.numpy(), rtol=1e-6, atol=1e-9)


BASELINE_TWINS = """
import sys, torch
from ftlens._core import _C
print(_C.build_info()["cpu_avx2"])
rng = torch.Generator().manual_seed(5)
xs = (torch.randn(3, 301, 37, generator=rng) * 4 + 30).half()
shift, scale = torch.randn(3, 37, generator=rng) + 30, torch.rand(3, 37, generator=rng) + 0.5
logits = torch.randn(3, 301, 40, generator=rng) * 20
labels, offsets = torch.randint(0, 13, (301, 2), generator=rng), torch.tensor([0, 13, 40])
loss = _C.softmax_xent(logits, labels, offsets)
torch.save({"rows": _C.scale_rows(xs, shift, scale), "softmax": logits, "loss": loss}, sys.argv[1])
"""


def test_baseline_and_avx2_twins_agree(tmp_path):
    """The row kernels' baseline twins (forced by FTLENS_CPU_BASELINE) against the twins this
    processor uses: float16 conversion bit for bit, the softmax within float32 rounding."""
    import os
    import subprocess
    import sys

    outputs = {}
    for name, extra in (("native", {}), ("baseline", {"FTLENS_CPU_BASELINE": "1"})):
        path = tmp_path / f"{name}.pt"
        env = {k: v for k, v in os.environ.items() if k != "FTLENS_CPU_BASELINE"} | extra
        run = subprocess.run([sys.executable, "-c", BASELINE_TWINS, str(path)], env=env, capture_output=True,
                             text=True, check=True)
        outputs[name] = (run.stdout.strip(), torch.load(path))
    assert outputs["baseline"][0] == "False"
    native, baseline = outputs["native"][1], outputs["baseline"][1]
    assert torch.equal(native["rows"], baseline["rows"])
    np.testing.assert_allclose(native["softmax"].numpy(), baseline["softmax"].numpy(), rtol=0, atol=3e-7)
    np.testing.assert_allclose(native["loss"].numpy(), baseline["loss"].numpy(), rtol=1e-6)


def test_softmax_xent_refuses_labels_outside_their_task():
    with pytest.raises(ValueError, match="class index below its task's width"):
        _C.softmax_xent(torch.zeros(1, 2, 5), torch.tensor([[0, 3], [1, 1]]), torch.tensor([0, 2, 5]))


def _brute_force_mst_weight(distances):
    n = len(distances)
    edges = list(itertools.combinations(range(n), 2))
    best = np.inf
    for subset in itertools.combinations(edges, n - 1):
        parent = list(range(n))

        def find(i, parent=parent):
            while parent[i] != i:
                i = parent[i]
            return i

        tree = True
        for i, j in subset:
            a, b = find(i), find(j)
            if a == b:
                tree = False
                break
            parent[a] = b
        if tree:
            best = min(best, sum(distances[i, j] for i, j in subset))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_minimum_spanning_tree_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    points = rng.normal(size=(n, 3))
    distances = ((points[:, None] - points[None]) ** 2).sum(-1)
    edges = minimum_spanning_edges(distances)
    assert len(edges) == n - 1
    assert sum(distances[i, j] for i, j in edges) == pytest.approx(_brute_force_mst_weight(distances))


def test_uuas_of_gold_distances_is_one_and_punctuation_is_left_out():
    heads = np.array([2, 0, 2, 3, 2])  # word 5 (punctuation) hangs off the root
    keep = np.array([True, True, True, True, False])
    gold = gold_edges(heads, keep)
    assert gold == {(0, 1), (1, 2), (2, 3)}
    predicted = minimum_spanning_edges(tree_distances(heads)[np.ix_(keep, keep)].astype(float))
    assert predicted == gold


def test_gold_edges_bridge_punctuation_with_dependents_as_hewitt_and_manning():
    """Their reporter's gold edges are the MST (Kruskal, row-major pairs, stable sort) of the
    gold distances between non-punctuation words: a punctuation word with dependents is
    bridged by distance-2 edges, the first in row-major order among ties."""
    heads = np.array([3, 3, 0, 3])  # word 3 is punctuation and heads words 1, 2 and 4
    keep = np.array([True, True, False, True])
    assert gold_edges(heads, keep) == {(0, 1), (0, 2)}  # a-b and a-d (distance 2), not b-d
    heads = np.array([2, 0, 2, 3])  # word 3 is punctuation with one dependent: 2 - 4 bridged
    assert gold_edges(heads, np.array([True, True, False, True])) == {(0, 1), (1, 2)}


def test_root_accuracy_counts_every_sentence_as_hewitt_and_manning():
    """A sentence of punctuation only counts (its shallowest word is the guess); so does one
    whose gold root is punctuation (always wrong without punctuation guesses)."""
    from ftlens.probes.structural import evaluate_structural

    class Fixed:
        task = "depth"

        def __init__(self, depths):
            self.depths = depths

        def predict(self, hidden):
            return torch.as_tensor(self.depths)[None]

    store = ftlens.store.from_arrays(
        [np.zeros((5, 2), np.float32)],
        {"upos": ["PUNCT", "PUNCT", "NOUN", "VERB", "PUNCT"], "head": [0, 1, 2, 0, 2]},
        index=np.array([[0, 0], [0, 1], [1, 0], [1, 1], [1, 2]]))
    depths = np.array([[0.9, 0.1, 0.0], [0.5, 0.2, 0.0]], np.float32)  # sentence 0 wrong, 1 right
    result = evaluate_structural(Fixed(depths), store, [0])
    assert result["root_accuracy"][0] == pytest.approx(1 / 2)


def test_tree_distances_and_depths_equal_floyd_warshall():
    rng = np.random.default_rng(4)
    for _ in range(5):
        n = int(rng.integers(2, 9))
        order = rng.permutation(n)
        heads = np.zeros(n, dtype=np.int64)
        for k in range(1, n):
            heads[order[k]] = order[rng.integers(k)] + 1
        full = np.full((n, n), np.inf)
        np.fill_diagonal(full, 0)
        for i, h in enumerate(heads):
            if h:
                full[i, h - 1] = full[h - 1, i] = 1
        for k in range(n):
            full = np.minimum(full, full[:, [k]] + full[[k], :])
        np.testing.assert_array_equal(tree_distances(heads), full)
        np.testing.assert_array_equal(tree_depths(heads), full[order[0]])
