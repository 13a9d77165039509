"""The Multi-Bootstrap against direct brute force on the same resamples (loops over drawn
seeds and rows, numpy float64), against Sellam et al.'s own procedure (their loop, another
random stream: the same distribution), and on the edge cases: one seed, paired and
unpaired seeds, groups of unequal size, a constant metric, bad input."""

from statistics import NormalDist

import numpy as np
import pytest
import torch
from ftlens.similarity import gram_draws
from ftlens.similarity.bootstrap import (
    compare_procedures,
    counts,
    difference,
    draw,
    interval,
    moment_draws,
    multibootstrap,
)
from ftlens.similarity.grouped import GroupedMoments

from tests.helpers import reference


def _scores(seeds=4, examples=30, seed=0, ratio=True):
    """Per-example scores of a ratio metric (as LAS: right words over words per sentence)."""
    rng = np.random.default_rng(seed)
    den = rng.integers(1, 12, size=(seeds, examples)).astype(float) if ratio else np.ones((seeds, examples))
    skill = rng.uniform(0.3, 1.0, size=(seeds, 1))
    num = np.floor(den * skill * rng.uniform(0.5, 1.0, size=(seeds, examples)))
    return num, den


def _brute(num, den, units, seeds, scale=1.0):
    """Each draw: the mean over its drawn seeds of sum(num) / sum(den) over its drawn rows."""
    out = []
    for rows, chosen in zip(units, seeds, strict=True):
        out.append(np.mean([scale * num[s, rows].sum() / den[s, rows].sum() for s in chosen]))
    return np.array(out)


def test_a_metric_equals_brute_force_on_the_same_resamples():
    num, den = _scores()
    result = multibootstrap(num, den, scale=100.0, draws=300, level=0.9, seed=7)
    resamples = draw(num.shape[1], num.shape[0], 300, 7)
    want = _brute(num, den, resamples.units, resamples.seeds, scale=100.0)
    assert np.abs(result.draws - want).max() < 1e-10
    assert result.estimate == pytest.approx(np.mean(100 * num.sum(1) / den.sum(1)), abs=1e-10)
    assert result.se == pytest.approx(want.std(ddof=1), abs=1e-10)
    assert (result.low, result.high) == pytest.approx(tuple(np.quantile(want, [0.05, 0.95])), abs=1e-10)
    again = multibootstrap(num, den, scale=100.0, draws=300, level=0.9, seed=7)
    assert np.array_equal(again.draws, result.draws)  # a fixed seed reproduces


def test_one_seed_is_the_bootstrap_over_examples():
    num, den = _scores(seeds=1)
    result = multibootstrap(num[0], den[0], draws=200, seed=3)
    units = draw(num.shape[1], 1, 200, 3).units
    want = [num[0, rows].sum() / den[0, rows].sum() for rows in units]
    assert np.abs(result.draws - want).max() < 1e-10 and result.seeds == 1


def test_counts_are_how_often_each_item_is_drawn():
    indices = np.array([[0, 0, 2], [1, 2, 1]])
    assert counts(indices).tolist() == [[2, 0, 1], [0, 2, 1]]


def test_paired_comparisons_draw_the_same_seeds_and_examples():
    a, b = _scores(seed=1), _scores(seed=2)
    a_seeds, b_seeds = [2, 0, 3, 1], [0, 1, 2, 3]
    diff = compare_procedures(a, b, a_seeds=a_seeds, b_seeds=b_seeds, draws=250, seed=5)
    assert diff.paired
    resamples = draw(a[0].shape[1], 4, 250, 5)
    order = np.argsort(a_seeds)  # a's rows by seed, as b's
    want_a = _brute(a[0][order], a[1][order], resamples.units, resamples.seeds)
    want_b = _brute(*b, resamples.units, resamples.seeds)
    deltas = want_b - want_a
    assert np.abs(diff.a.draws - want_a).max() < 1e-10 and np.abs(diff.b.draws - want_b).max() < 1e-10
    assert diff.p_not_better == pytest.approx(np.mean(deltas <= 0), abs=1e-12)
    assert diff.p == pytest.approx(min(1, 2 * min(np.mean(deltas <= 0), np.mean(deltas >= 0))), abs=1e-12)
    assert (diff.low, diff.high) == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])), abs=1e-10)
    # a procedure's interval is the same alone and in a comparison
    assert np.array_equal(diff.b.draws, multibootstrap(*b, draws=250, seed=5).draws)


def test_unpaired_comparisons_draw_each_procedures_seeds_on_their_own():
    a, b = _scores(seeds=3, seed=1), _scores(seeds=5, seed=2)
    diff = compare_procedures(a, b, a_seeds=[0, 1, 2], b_seeds=[10, 11, 12, 13, 14], draws=200, seed=2)
    assert not diff.paired
    resamples = draw(a[0].shape[1], 3, 200, 2, other_seeds=5)
    assert np.abs(diff.a.draws - _brute(*a, resamples.units, resamples.seeds)).max() < 1e-10
    assert np.abs(diff.b.draws - _brute(*b, resamples.units, resamples.other_seeds)).max() < 1e-10
    with pytest.raises(ValueError, match=r"a paired comparison needs runs of the same seeds: a has \[0, 1,"):
        compare_procedures(a, b, a_seeds=[0, 1, 2], b_seeds=[10, 11, 12, 13, 14], paired=True)


def test_a_constant_metric_has_no_spread_and_no_difference():
    ones = np.ones((3, 20))
    result = multibootstrap(ones, ones, draws=50)
    assert (result.estimate, result.se, result.low, result.high) == (1.0, 0.0, 1.0, 1.0)
    diff = compare_procedures((ones, ones), (ones, ones), draws=50)
    assert (diff.estimate, diff.se, diff.low, diff.high, diff.p) == (0.0, 0.0, 0.0, 0.0, 1.0)


def _sellam(preds_a, preds_b, labels, nboot, rng):
    """Sellam et al.'s multibootstrap loop (paired seeds): per draw, seeds then examples
    with replacement, each drawn seed scored (accuracy) on the drawn examples."""
    out = []
    seeds = np.arange(len(preds_a))
    for _ in range(nboot):
        chosen = rng.choice(seeds, size=len(seeds), replace=True)
        rows = rng.choice(len(labels), size=len(labels), replace=True)
        score = [[np.mean(p[s, rows] == labels[rows]) for s in chosen] for p in (preds_a, preds_b)]
        out.append((np.mean(score[0]), np.mean(score[1])))
    return np.array(out)


def test_percentiles_match_sellam_et_al_procedure():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, size=400)
    skill_a, skill_b = rng.uniform(0.6, 0.7, size=(6, 1)), rng.uniform(0.62, 0.75, size=(6, 1))
    preds_a = np.where(rng.uniform(size=(6, 400)) < skill_a, labels, 1 - labels)
    preds_b = np.where(rng.uniform(size=(6, 400)) < skill_b, labels, 1 - labels)
    theirs = _sellam(preds_a, preds_b, labels, 3000, np.random.RandomState(0))
    right_a, right_b = (preds_a == labels).astype(float), (preds_b == labels).astype(float)
    ours = compare_procedures((right_a, None), (right_b, None), draws=3000, seed=1)
    for mine, column in ((ours.a, theirs[:, 0]), (ours.b, theirs[:, 1])):
        assert mine.draws.mean() == pytest.approx(column.mean(), abs=0.002)
        assert (mine.low, mine.high) == pytest.approx(tuple(np.quantile(column, [0.025, 0.975])), abs=0.004)
        assert mine.se == pytest.approx(column.std(ddof=1), rel=0.08)
    deltas = theirs[:, 1] - theirs[:, 0]
    assert (ours.low, ours.high) == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])), abs=0.004)


@pytest.mark.parametrize("bad, problem", [
    (dict(num=np.ones((2, 3)), den=np.ones((2, 4))), r"num and den must be \[seeds, examples\] of one shape"),
    (dict(num=np.full((2, 3), np.nan)), r"hold NaN or Inf"),
    (dict(num=np.ones((2, 3)), den=np.zeros((2, 3))), r"positive total denominator"),
    (dict(num=np.ones((2, 3)), level=1.5), r"level must lie in \(0, 1\)"),
])
def test_bad_metric_input_is_refused(bad, problem):
    with pytest.raises(ValueError, match=problem):
        multibootstrap(**bad)


def test_procedures_on_other_examples_are_refused():
    with pytest.raises(ValueError, match=r"scored on different examples \(3 and 4\)"):
        compare_procedures((np.ones((2, 3)), None), (np.ones((2, 4)), None))


# -- representation measures ------------------------------------------------------------
def _grouped(seed=0, groups=5):
    """Moments of 3 layers in 5 groups of unequal size (inputs of 1 to 6 rows), with
    offsets as large as BERT's."""
    rng = np.random.default_rng(seed)
    rows_per_input = rng.integers(1, 7, size=17)
    n = int(rows_per_input.sum())
    x = rng.normal(size=(3, n, 6)) * rng.uniform(0.5, 3, size=6) + 40
    y = 0.6 * x[..., :5] + rng.normal(size=(3, n, 5)) - 25
    item = np.repeat(np.arange(len(rows_per_input)), rows_per_input)
    moments = GroupedMoments(groups, len(rows_per_input), 3, 6, 5)
    for start in range(0, n, 9):  # batches that cut across inputs and groups
        rows = slice(start, start + 9)
        moments.update(torch.from_numpy(x[:, rows]), torch.from_numpy(y[:, rows]), item[rows])
    group_of_row = moments.group_of(item)
    return moments, x, y, group_of_row


def test_moment_draws_equal_brute_force_on_the_drawn_rows():
    moments, x, y, group_of_row = _grouped()
    assert len(set(np.bincount(group_of_row))) > 1  # groups of unequal size
    unit_counts = counts(draw(5, 1, 6, seed=4).units)
    unit_counts[0] = [0, 3, 0, 1, 1]  # a group drawn three times, others not at all
    requests = {"cka": {}, "rsa": {"rdm": "correlation"}, "procrustes": {}}
    got = moment_draws(moments.groups, requests, unit_counts, chunk_draws=4, threads=2)
    for d, weights in enumerate(unit_counts):
        rows = np.concatenate([np.flatnonzero(group_of_row == g) for g, m in enumerate(weights)
                               for _ in range(int(m))])
        for layer in range(3):
            xs, ys = x[layer, rows], y[layer, rows]
            assert got["cka"][d, layer] == pytest.approx(reference.cka(xs, ys), abs=1e-10)
            assert got["rsa"][d, layer] == pytest.approx(reference.rsa(xs, ys, "correlation"), abs=1e-10)
            assert got["procrustes"][d, layer] == pytest.approx(reference.procrustes(xs, ys), abs=1e-9)


def test_moment_draws_of_all_groups_once_are_the_full_measures():
    moments, *_ = _grouped(seed=1)
    got = moment_draws(moments.groups, {"cka": {}}, np.ones((1, 5)))
    assert np.abs(got["cka"][0] - moments.merged().cka()).max() < 1e-12


def test_moment_draws_refuse_empty_groups_and_wrong_counts():
    moments, *_ = _grouped()
    with pytest.raises(ValueError, match=r"unit_counts must be \[draws, 5 groups\]"):
        moment_draws(moments.groups, {"cka": {}}, np.ones((2, 4)))
    empty = GroupedMoments(2, 4, 3, 6, 5)
    empty.update(torch.randn(3, 4, 6, dtype=torch.float64), torch.randn(3, 4, 5, dtype=torch.float64),
                 np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"groups \[1\] hold no rows"):
        moment_draws(empty.groups, {"cka": {}}, np.ones((1, 2)))


MOMENT_MEASURES = [("cka", {}), ("cka_debiased", {})] + [
    ("rsa", {"rdm": rdm, "compare": compare})
    for rdm in ("inner", "cosine", "correlation", "sqeuclidean") for compare in ("pearson", "cosine")]


@pytest.mark.parametrize("name, options", MOMENT_MEASURES)
def test_gram_forms_equal_the_explicit_merges(name, options, monkeypatch):
    """CKA and RSA of every draw from Gram matrices of the groups, against loading each
    draw's merged moments into the core."""
    moments, *_ = _grouped(seed=2)
    unit_counts = counts(draw(5, 1, 12, seed=1).units)
    fast = moment_draws(moments.groups, {name: options}, unit_counts)[name]
    monkeypatch.setattr(gram_draws, "supports", lambda *_: False)
    merged = moment_draws(moments.groups, {name: options}, unit_counts)[name]
    assert np.isfinite(fast).all() and np.abs(fast - merged).max() < 1e-10


def test_gram_forms_give_nan_where_a_layer_is_constant():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 24, 4)) + 10
    x[1] = rng.normal(size=4) + 7  # layer 1 of X: one row repeated
    y = rng.normal(size=(2, 24, 3))
    moments = GroupedMoments(3, 24, 2, 4, 3)
    moments.update(torch.from_numpy(x), torch.from_numpy(y), np.arange(24))
    got = moment_draws(moments.groups, {"cka": {}, "rsa": {}}, np.ones((2, 3)))
    for name in ("cka", "rsa"):
        assert np.isfinite(got[name][:, 0]).all() and np.isnan(got[name][:, 1]).all()


def test_similarity_intervals_are_normal_around_the_estimate_since_resampling_biases_them():
    """Drawing a group twice duplicates its rows, and CKA rises with duplicated rows: the
    draws sit above the estimate, so a percentile interval could exclude it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 400, 48))
    y = x + 1.5 * rng.normal(size=(1, 400, 48))
    moments = GroupedMoments(20, 400, 1, 48, 48)
    moments.update(torch.from_numpy(x), torch.from_numpy(y), np.arange(400))
    resamples = draw(20, 1, 400, seed=0)
    per_seed = moment_draws(moments.groups, {"cka": {}}, resamples.unit_counts)["cka"][None]
    full = moments.merged().cka()[None]
    normal = interval(full, per_seed, resamples.seeds, 0.9, 20, method="normal")
    percentile = interval(full, per_seed, resamples.seeds, 0.9, 20)
    assert normal.bias[0] > normal.se[0] / 2 and percentile.low[0] > full[0, 0] - normal.se[0]
    z = NormalDist().inv_cdf(0.95)
    assert normal.se[0] == pytest.approx(per_seed[0, :, 0].std(ddof=1), abs=1e-14)
    assert (normal.low[0], normal.high[0]) == pytest.approx((full[0, 0] - z * normal.se[0],
                                                             full[0, 0] + z * normal.se[0]), abs=1e-14)
    same = difference(normal, normal, paired=True)
    assert (same.estimate[0], same.se[0], same.p[0]) == (0.0, 0.0, 1.0)
    noise = 0.002 * rng.normal(size=per_seed.shape)
    shifted = interval(full + 0.01, per_seed + 0.01 + noise, resamples.seeds, 0.9, 20, method="normal")
    diff = difference(normal, shifted, paired=True)
    want_p = 2 * (1 - NormalDist().cdf(abs(diff.estimate[0]) / diff.se[0]))
    assert diff.estimate[0] == pytest.approx(0.01, abs=1e-12)
    assert diff.p[0] == pytest.approx(want_p, abs=1e-12)
