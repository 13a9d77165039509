"""Jackknife intervals: GroupedMoments against leave-a-group-out brute force in float64 (on
rows with large offsets), the textbook identity for the mean, and compare_models(ci=...)."""

import json

import ftlens
import numpy as np
import pytest
import torch
from ftlens.compare.models import LayerComparison
from ftlens.data import generate_sentences
from ftlens.similarity.grouped import GroupedMoments
from ftlens.similarity.intervals import jackknife
from helpers import reference as ref
from helpers.data import offset_data
from scipy.stats import t as student_t

SENTENCES = [" ".join(s.words) for s in generate_sentences(60, seed=8)]


def _groups_data(n_inputs=23, layers=2, seed=0):
    """Two layer stacks with offsets, an uneven number of rows per input."""
    rng = np.random.default_rng(seed)
    rows_per_input = rng.integers(1, 6, size=n_inputs)
    item = np.repeat(np.arange(n_inputs), rows_per_input)
    xs, ys = zip(*(offset_data(n=len(item), seed=seed + i) for i in range(layers)), strict=True)
    return np.stack(xs), np.stack(ys), item


def _brute_jackknife(xs, ys, item, n_groups, level, measure):
    group = item * n_groups // (item.max() + 1)
    layers = range(len(xs))
    full = np.array([measure(xs[i], ys[i]) for i in layers])
    outs = np.array([[measure(xs[i][group != g], ys[i][group != g]) for i in layers]
                     for g in range(n_groups)])
    se = np.sqrt((n_groups - 1) / n_groups * ((outs - outs.mean(0)) ** 2).sum(0))
    half = student_t.ppf(0.5 + level / 2, n_groups - 1) * se
    return full, full - half, full + half


@pytest.mark.parametrize("n_groups", [2, 5, 7])
def test_grouped_intervals_equal_leave_a_group_out_brute_force(n_groups):
    xs, ys, item = _groups_data()
    moments = GroupedMoments(n_groups, item.max() + 1, 2, xs.shape[2], ys.shape[2], rdms=("correlation",))
    for start in range(0, len(item), 13):  # chunks that split inputs and groups
        rows = slice(start, start + 13)
        moments.update(torch.from_numpy(xs[:, rows]), torch.from_numpy(ys[:, rows]), item[rows])
    got = moments.measures({"cka": {}, "rsa": {"rdm": "correlation"}}, level=0.9)
    for name, measure in (("cka", ref.cka), ("rsa", lambda x, y: ref.rsa(x, y, "correlation"))):
        want = _brute_jackknife(xs, ys, item, n_groups, 0.9, measure)
        for g, w in zip(got[name], want, strict=True):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-9)


def test_jackknife_of_the_mean_is_the_standard_error_of_group_means():
    rng = np.random.default_rng(3)
    values = rng.normal(5.0, 2.0, size=60)
    groups = values.reshape(6, 10)
    leave_outs = np.array([np.delete(groups, g, axis=0).mean() for g in range(6)])
    low, high = jackknife(values.mean(), leave_outs, level=0.95)
    se = groups.mean(1).std(ddof=1) / np.sqrt(6)
    half = student_t.ppf(0.975, 5) * se
    assert low == pytest.approx(values.mean() - half, rel=1e-12)
    assert high == pytest.approx(values.mean() + half, rel=1e-12)


def test_leave_outs_visit_every_group_once_with_the_rest_merged():
    xs, ys, item = _groups_data(n_inputs=11, layers=1)
    moments = GroupedMoments(11, 11, 1, xs.shape[2], ys.shape[2], rdms=())
    moments.update(xs, ys, item)
    seen = [(g, m.n) for g, m in moments.leave_outs()]
    assert [g for g, _ in seen] == list(range(11))
    assert [n for _, n in seen] == [len(item) - int((item == g).sum()) for g in range(11)]


def test_bad_jackknife_arguments():
    with pytest.raises(ValueError, match="more than the number of inputs"):
        GroupedMoments(10, 5, 1, 3, 3)
    moments = GroupedMoments(3, 3, 1, 3, 3, rdms=())
    with pytest.raises(ValueError, match=r"input indices must lie in \[0, 3\)"):
        moments.update(np.ones((1, 2, 3)), np.ones((1, 2, 3)), [0, 3])
    moments.update(np.random.rand(1, 4, 3), np.random.rand(1, 4, 3), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="group 2 received no rows"):
        moments.measures({"cka": {}}, level=0.95)
    with pytest.raises(ValueError, match="at least 2 groups"):
        jackknife(0.5, [0.5], 0.95)


def test_compare_models_intervals_contain_the_values_and_survive_json(minilm, tmp_path):
    result = ftlens.compare_models(minilm, minilm, SENTENCES, ci=0.95, ci_groups=6, progress=False)
    assert result.ci == 0.95 and result.ci_groups == 6
    for name in ("cka", "rsa"):
        low, high = result.interval(name)
        np.testing.assert_allclose(low, 1.0, atol=1e-6)  # identical models: no spread at all
        np.testing.assert_allclose(high, 1.0, atol=1e-6)
    result.save(tmp_path / "r.json")
    back = LayerComparison.load(tmp_path / "r.json")
    np.testing.assert_array_equal(back.interval("rsa")[0], result.interval("rsa")[0])
    assert json.loads((tmp_path / "r.json").read_text())["intervals"]["cka"][1][0] == pytest.approx(1.0)


def test_compare_models_intervals_do_not_depend_on_batching(minilm, reinit_top):
    kwargs = dict(ci=0.9, ci_groups=5, progress=False, measures=("cka", "rsa"))
    a = ftlens.compare_models(minilm, reinit_top, SENTENCES, batch_size=7, **kwargs)
    b = ftlens.compare_models(minilm, reinit_top, SENTENCES, batch_size=32, **kwargs)
    for name in ("cka", "rsa"):
        low, high = a.interval(name)
        assert (low[-1] < a.values[name][-1] < high[-1]) and high[-1] - low[-1] > 1e-4
        np.testing.assert_allclose(np.stack(b.interval(name)), np.stack(a.interval(name)), atol=1e-5)


def test_compare_models_interval_errors(minilm):
    with pytest.raises(ValueError, match=r"ci is a confidence level in \(0, 1\)"):
        ftlens.compare_models(minilm, minilm, SENTENCES, ci=95)
    with pytest.raises(ValueError, match=r"ci_groups must lie in \[2, number of inputs = 60\]"):
        ftlens.compare_models(minilm, minilm, SENTENCES, ci=0.95, ci_groups=61)
    result = ftlens.compare_models(minilm, minilm, SENTENCES[:8], progress=False)
    with pytest.raises(ValueError, match="pass ci=0.95"):
        result.interval("cka")


@pytest.fixture(scope="module")
def reinit_top(minilm):
    import copy

    from ftlens.activations.capture import layer_blocks

    model, tokenizer = minilm
    changed = copy.deepcopy(model)
    torch.manual_seed(0)
    list(layer_blocks(changed))[-1].apply(changed._init_weights)
    return changed, tokenizer
