"""Probes over fine-tuning seeds: the per-input counts a probe keeps, the Multi-Bootstrap of
probe accuracy over seeds and eval inputs against a brute-force loop over resampled rows,
and procedures compared, paired and unpaired."""

import warnings
from dataclasses import replace

import ftlens
import numpy as np
import pytest
from ftlens.probes import ProbeResult, probes_across_seeds, probes_between_procedures, with_intervals
from ftlens.similarity.bootstrap import draw
from helpers.probe_data import synthetic_store

LAYERS, TASKS, DRAWS = 3, 2, 200


def _rows(n_inputs: int, seed: int):
    """Each row's input (1 to 7 rows per input, unequal) and, per seed, each row's
    right/wrong for the task and its control, [L, rows, T]."""
    rng = np.random.default_rng(seed)
    inputs = np.repeat(np.arange(n_inputs), rng.integers(1, 8, n_inputs))
    return inputs, rng


def _result(inputs, n_inputs, rng, skill: float, control: bool = True):
    """A probe result with the rows right drawn at ``skill`` (and at skill - 0.2 for the
    control task) and its per-row truth [L, rows, T] for the brute force."""
    right = rng.random((LAYERS, len(inputs), TASKS)) < skill + 0.1 * np.arange(LAYERS)[:, None, None]
    truth = {"accuracy": right}
    if control:
        truth["control_accuracy"] = rng.random((LAYERS, len(inputs), TASKS)) < skill - 0.2
    by_input = {}
    for metric, rows in truth.items():
        counts = np.zeros((LAYERS, TASKS, n_inputs))
        for i, at in enumerate(inputs):
            counts[:, :, at] += rows[:, i, :]
        by_input[metric], by_input[f"{metric}_rows"] = counts, np.tile(np.bincount(inputs), (TASKS, 1))
    scores = {m: rows.mean(1) for m, rows in truth.items()}
    if control:
        scores["selectivity"] = scores["accuracy"] - scores["control_accuracy"]
    scores["macro_f1"] = scores["accuracy"] * 0.9
    result = ProbeResult(model="m", layers=[f"layer {i}" for i in range(LAYERS)], tasks=["upos", "xpos"],
                         kind="logistic", rows="tokens", scores=scores, n_eval=dict.fromkeys(["upos", "xpos"],
                         len(inputs)), eval_data="eval", by_input=by_input)
    return result, truth


def _brute(truths, inputs, units, seed_picks, metric):
    """Each draw's value by resampling rows: the mean over the drawn seeds of each seed's
    accuracy on the rows of the drawn inputs (an input drawn twice counts twice) [D, L, T]."""
    rows_of = [np.flatnonzero(inputs == i) for i in range(inputs.max() + 1)]
    out = []
    for d in range(len(units)):
        rows = np.concatenate([rows_of[i] for i in units[d]])
        per_seed = []
        for s in seed_picks[d]:
            acc = truths[s]["accuracy"][:, rows].mean(1)
            if metric == "selectivity":
                acc = acc - truths[s]["control_accuracy"][:, rows].mean(1)
            elif metric == "control_accuracy":
                acc = truths[s]["control_accuracy"][:, rows].mean(1)
            per_seed.append(acc)
        out.append(np.mean(per_seed, axis=0))
    return np.array(out)


@pytest.fixture(scope="module")
def seeds_case():
    n_inputs = 25
    inputs, rng = _rows(n_inputs, 0)
    made = [_result(inputs, n_inputs, rng, skill) for skill in (0.6, 0.5, 0.7, 0.55)]
    return inputs, [m[0] for m in made], [m[1] for m in made]


@pytest.mark.parametrize("metric", ["accuracy", "control_accuracy", "selectivity"])
def test_seeds_combined_equal_the_brute_force_over_resampled_rows(seeds_case, metric):
    inputs, results, truths = seeds_case
    seeds = [7, 3, 5, 1]  # given out of order: taken in seed order
    combined = probes_across_seeds(results, seeds, level=0.9, draws=DRAWS, draw_seed=11)
    order = np.argsort(seeds)
    resamples = draw(len(np.unique(inputs)), len(seeds), DRAWS, 11)
    values = _brute([truths[i] for i in order], inputs, resamples.units, resamples.seeds, metric)
    low, high = np.quantile(values, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(combined.intervals[metric], np.stack([low, high]), rtol=0, atol=1e-10)
    truth_metric = "accuracy" if metric == "selectivity" else metric
    full = np.mean([t[truth_metric].mean(1) for t in truths], axis=0)
    if metric == "selectivity":
        full = full - np.mean([t["control_accuracy"].mean(1) for t in truths], axis=0)
    np.testing.assert_allclose(combined.scores[metric], full, rtol=0, atol=1e-12)
    assert combined.seeds == [1, 3, 5, 7] and combined.seed_scores["accuracy"].shape == (4, LAYERS, TASKS)
    np.testing.assert_allclose(combined.scores["macro_f1"], combined.seed_scores["macro_f1"].mean(0))
    assert combined.interval_method == "multibootstrap" and combined.level == 0.9
    assert combined.strength is None


def test_one_seed_is_the_plain_bootstrap_over_inputs(seeds_case):
    inputs, results, truths = seeds_case
    one = probes_across_seeds(results[:1], [0], draws=DRAWS, draw_seed=2)
    units = draw(len(np.unique(inputs)), 1, DRAWS, 2).units
    values = _brute(truths[:1], inputs, units, np.zeros((DRAWS, 1), dtype=int), "accuracy")
    np.testing.assert_allclose(one.intervals["accuracy"], np.quantile(values, [0.025, 0.975], axis=0),
                               rtol=0, atol=1e-10)
    low, high = one.interval("accuracy")  # the result's interval is the bootstrap's, not Wilson's
    np.testing.assert_array_equal(np.stack([low, high]), one.intervals["accuracy"])
    with pytest.raises(ValueError, match="level 0.95, not 0.9"):
        one.interval("accuracy", 0.9)
    single = with_intervals(results[0], draws=DRAWS, draw_seed=2)  # one model's, kept beyond its counts
    np.testing.assert_array_equal(single.intervals["accuracy"], one.intervals["accuracy"])
    assert single.interval_method == "sentences" and single.seeds is None
    plain = np.stack(results[0].interval("accuracy", 0.9))  # a plain result: over its sentences, not rows
    np.testing.assert_array_equal(plain, with_intervals(results[0], 0.9).intervals["accuracy"])


@pytest.mark.parametrize("paired", [True, False])
def test_procedures_compared_equal_the_brute_force(seeds_case, paired):
    inputs, results, truths = seeds_case
    a_seeds, b_seeds = [0, 1], [0, 1] if paired else [2, 3]
    diff = probes_between_procedures(results[:2], a_seeds, results[2:], b_seeds, draws=DRAWS, draw_seed=4)
    assert diff["accuracy"].paired is paired
    resamples = draw(len(np.unique(inputs)), 2, DRAWS, 4, None if paired else 2)
    a = _brute(truths[:2], inputs, resamples.units, resamples.seeds, "selectivity")
    b_picks = resamples.seeds if paired else resamples.other_seeds
    b = _brute(truths[2:], inputs, resamples.units, b_picks, "selectivity")
    np.testing.assert_allclose(np.stack([diff["selectivity"].low, diff["selectivity"].high]),
                               np.quantile(b - a, [0.025, 0.975], axis=0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(diff["selectivity"].p_not_better, (b - a <= 0).mean(0), rtol=0, atol=1e-12)


def test_the_base_model_against_fine_tuned_seeds_is_unpaired(seeds_case):
    _, results, _ = seeds_case
    diff = probes_between_procedures(results[:1], [0], results[1:], [0, 1, 2], paired=False, draws=DRAWS)
    assert not diff["accuracy"].paired and diff["accuracy"].estimate.shape == (LAYERS, TASKS)
    with pytest.raises(ValueError, match="same seeds"):
        probes_between_procedures(results[:1], [0], results[1:], [0, 1, 2], paired=True, draws=DRAWS)


def test_bad_input_is_named(seeds_case):
    _, results, _ = seeds_case
    with pytest.raises(ValueError, match="one distinct seed"):
        probes_across_seeds(results[:2], [1, 1])
    with pytest.raises(ValueError, match="no probe result"):
        probes_across_seeds([], [])
    with pytest.raises(ValueError, match=r"seed 1 differs from the first in \['eval_data'\]"):
        probes_across_seeds([results[0], replace(results[1], eval_data="other")], [0, 1])
    with pytest.raises(ValueError, match="seeds \\[1\\] have no per-input counts"):
        probes_across_seeds([results[0], replace(results[1], by_input={})], [0, 1])
    fewer = replace(results[1], by_input={k: v[..., :-1] for k, v in results[1].by_input.items()})
    with pytest.raises(ValueError, match="eval inputs or control tasks"):
        probes_across_seeds([results[0], fewer], [0, 1])


def test_a_probe_keeps_its_per_input_counts(tmp_path):
    train, eval_store = synthetic_store(120, seed=0), synthetic_store(50, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ftlens.probe(train, eval_store, tasks=("upos", "edge:deprel", "arc", "distance"), l2=1e-3,
                              epochs=2, rank=4, progress=False)
    assert result.by_input["accuracy"].shape == (3, 4, eval_store.manifest["n_inputs"])
    assert result.eval_data == eval_store.manifest["data_fingerprint"]
    with np.errstate(invalid="ignore"):
        for metric in ("accuracy", "control_accuracy"):
            rows = result.by_input[f"{metric}_rows"].sum(-1)
            np.testing.assert_allclose(result.by_input[metric].sum(-1) / rows, result.scores[metric],
                                       rtol=0, atol=1e-12)
    np.testing.assert_array_equal(result.by_input["accuracy_rows"].sum(-1)[:3],
                                  [result.n_eval[t] for t in result.tasks[:3]])
    assert not result.by_input["accuracy_rows"][3].any()  # the distance probe scores no classes
    result.save(tmp_path / "probe.json")
    back = ProbeResult.load(tmp_path / "probe.json")
    np.testing.assert_array_equal(back.by_input["accuracy"], result.by_input["accuracy"])
    combined = probes_across_seeds([result, back], [0, 1], draws=50)
    combined.save(tmp_path / "combined.json")
    again = ProbeResult.load(tmp_path / "combined.json")
    np.testing.assert_array_equal(again.intervals["selectivity"], combined.intervals["selectivity"])
    assert again.seeds == [0, 1] and again.level == 0.95
    np.testing.assert_allclose(again.scores["accuracy"], result.scores["accuracy"], rtol=0, atol=1e-12)
