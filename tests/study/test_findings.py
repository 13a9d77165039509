"""Every sentence of a report's findings and every sanity flag, checked against the results
it was written from, recomputed here by brute force (loops over layers, Newcombe's and
Wilson's formulas written out)."""

import math
from statistics import NormalDist

import numpy as np
import pytest
from ftlens.compare.display import similarity_text
from ftlens.study.report import build_report
from ftlens.study.report.findings import findings, flags
from helpers.study import synthetic_study
from scipy.stats import t as student_t

Z = NormalDist().inv_cdf(0.975)


def _wilson(p: float, n: int) -> tuple[float, float]:
    center = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


@pytest.fixture(scope="module")
def study():
    return synthetic_study()


def _of(found, topic):
    return [f for f in found if f.topic == topic]


def test_similarity_sentences_name_the_first_changed_layer_and_the_lowest(study):
    sentences = _of(findings(study), "similarity")
    assert [(f.facts["measure"], f.facts["task"]) for f in sentences] == [
        ("rsa", "parsing"),
        ("rsa", "pair"),
        ("cka", "parsing"),
        ("cka", "pair"),
    ]
    for f in sentences:
        task, measure = f.facts["task"], f.facts["measure"]
        in_domain = {"parsing": "sentences", "pair": "pairs"}[task]
        assert f.facts["set"] == in_domain
        result = study.compare[task][in_domain]
        values, (low, high) = result.values[measure], result.intervals[measure]
        first = None
        for layer in range(len(values)):  # the first layer whose upper bound is below 1
            if high[layer] < 1.0:
                first = layer
                break
        assert f.facts["first_below_1"] == first
        order = sorted(range(len(values)), key=lambda i: (values[i], i))
        assert f.facts["lowest"] == order[:2]
        for i in order[:2]:
            assert f"{result.layers[i]} ({similarity_text(values[i])} [{similarity_text(low[i])}" in f.text
        if first is not None:
            assert f"lies below 1 is {result.layers[first]} ({similarity_text(values[first])}" in f.text
        assert f.figure == f"similarity_{measure}.png"


def test_domain_sentences_state_the_difference_and_whether_its_interval_excludes_zero(study):
    for f in _of(findings(study), "domain"):
        task, measure = f.facts["task"], f.facts["measure"]
        a, b = study.compare[task][f.facts["in"]], study.compare[task][f.facts["out"]]
        t = student_t.ppf(0.975, 9)
        more, less = [], []
        for i in range(len(a.layers)):
            se_a = (a.intervals[measure][1][i] - a.intervals[measure][0][i]) / (2 * t)
            se_b = (b.intervals[measure][1][i] - b.intervals[measure][0][i]) / (2 * t)
            diff = b.values[measure][i] - a.values[measure][i]
            half = t * math.sqrt(se_a**2 + se_b**2)
            if diff - half > 0:
                more.append(i)
            if diff + half < 0:
                less.append(i)
        assert f.facts["more_similar"] == more and f.facts["less_similar"] == less
        if not more and not less:
            assert "no layer's 95% interval of the difference excludes 0" in f.text
        for i in more:
            assert a.layers[i] in f.text.split("stayed more similar to the base at ")[1]


def test_probe_sentences_call_a_change_significant_only_when_its_interval_excludes_zero(study):
    sentences = _of(findings(study), "probes")
    assert {(f.facts["model"], f.facts["task"]) for f in sentences} == {
        ("parsing", "upos"),
        ("parsing", "deprel"),
        ("pair", "upos"),
        ("pair", "deprel"),
    }
    for f in sentences:
        base, tuned = study.probes["base"]["sentences"], study.probes[f.facts["model"]]["sentences"]
        j = tuned.tasks.index(f.facts["task"])
        drops, gains = [], []
        for i in range(len(tuned.layers)):
            p1, p2, n = base.accuracy[i, j], tuned.accuracy[i, j], base.n_eval[f.facts["task"]]
            (l1, u1), (l2, u2) = _wilson(p1, n), _wilson(p2, n)
            low = p2 - p1 - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
            high = p2 - p1 + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
            if high < 0:
                drops.append(i)
            if low > 0:
                gains.append(i)
        assert f.facts["drops"] == drops and f.facts["gains"] == gains
        if not drops and not gains:
            assert "no layer's change is significant" in f.text
    parsing_deprel = next(
        f for f in sentences if f.facts == {**f.facts, "model": "parsing", "task": "deprel"}
    )
    assert parsing_deprel.facts["gains"] == [3, 4] and "higher at layer 3 and layer 4" in parsing_deprel.text
    pair_deprel = next(f for f in sentences if f.facts == {**f.facts, "model": "pair", "task": "deprel"})
    assert pair_deprel.facts["drops"] == [4] and "-20.0 points" in pair_deprel.text


def test_ablation_sentence_states_each_k_and_which_reach_the_baseline(study):
    (f,) = _of(findings(study), "ablation")
    assert "53.0% at k = 0, 60.0% at k = 2, 52.0% at k = 4" in f.text
    assert "from k = 2 to k = 4 (-8.0 points)" in f.text
    at = [k for k, v in ((0, 0.53), (2, 0.60), (4, 0.52)) if _wilson(v, 150)[0] <= 0.52]
    assert f.facts["at_baseline"] == at == [0, 4]
    assert "k = 0 and 4 are at it" in f.text and "52.0%" in f.text


def test_isotropy_sentences_state_the_top_layer_before_and_after(study):
    for f in _of(findings(study), "isotropy"):
        iso = study.detail[f.facts["task"]].by_rows["tokens"].isotropy
        before, after = iso["base"]["mean_cosine"][-1], iso["finetuned"]["mean_cosine"][-1]
        assert f"mean cosine {before:.3f} -> {after:.3f}" in f.text
        assert f.facts["mean_cosine"] == (before, after)


def test_sanity_flags_name_what_cannot_carry_a_conclusion(study):
    found = {(f.kind, f.facts.get("task"), f.facts.get("set")) for f in flags(study)}
    assert ("chance", "pair", None) in found  # 53% on 150 examples vs a majority of 52%
    assert not any(kind == "chance" and task == "parsing" for kind, task, _ in found)
    assert ("ceiling", "upos", "sentences") in found  # >= 99.5% at every layer of every model
    assert ("negative_selectivity", "deprel", "sentences") in found  # control 0.75 > accuracy 0.60
    assert ("small_eval", None, "pairs") in found  # 30 inputs in 10 jackknife groups
    assert ("wide_metric", "pair", None) in found  # +-8 points on 150 examples
    chance = next(f for f in flags(study) if f.kind == "chance")
    low, high = _wilson(0.53, 150)
    assert f"accuracy 53.0% [{100 * low:.1f}, {100 * high:.1f}]" in chance.text and "52.0%" in chance.text


def test_the_page_shows_flags_then_findings_then_the_rest(tmp_path, study):
    study.save(tmp_path / "results.json")
    page = build_report(tmp_path).read_text()
    flags_at, findings_at, tuning_at = (
        page.index("Sanity flags"),
        page.index("id='findings'"),
        page.index("<h2>Fine-tuning</h2>"),
    )
    assert flags_at < findings_at < tuning_at
    import html

    for sentence in [*findings(study), *flags(study)]:
        assert html.escape(sentence.text) in page
    for f in findings(study):
        assert f"href='#fig-{f.figure[:-4]}'" in page


def test_values_undefined_at_every_layer_are_left_out_not_a_crash(tmp_path):
    study = synthetic_study()
    for result in study.compare["pair"].values():  # e.g. a constant representation everywhere
        result.values["cka"] = np.full(5, np.nan)
        result.intervals["cka"] = np.full((2, 5), np.nan)
    for per_set in study.probes.values():
        per_set["sentences"].scores["accuracy"][:, 1] = np.nan
    found = findings(study)
    domain = [(f.facts["task"], f.facts["measure"]) for f in found if f.topic == "domain"]
    assert ("pair", "cka") not in domain and ("pair", "rsa") in domain
    assert not any(f.topic == "probes" and f.facts["task"] == "deprel" for f in found)
    assert not any(f.kind in ("ceiling", "floor") and f.facts["task"] == "deprel" for f in flags(study))
    study.save(tmp_path / "results.json")
    assert "Findings" in build_report(tmp_path).read_text()
