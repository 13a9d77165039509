"""What a study found, in sentences written from its results and their intervals, and the
sanity flags that say where those results cannot carry a conclusion.

Each ``Finding`` and ``Flag`` keeps the numbers it states (``facts``), so that a test can
check every sentence against the results it was written from. Percent points are used for
every accuracy-like number; similarities stay on their 0-1 scale.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.stats import t as student_t

from ...compare.display import similarity_text
from ...compare.models import LayerComparison
from ...probes.result import PROPORTIONS
from ...similarity.intervals import wilson
from ..results import StudyResult
from . import seeds
from .drawing import as_array
from .statements import LEVEL, Finding, Flag

CEILING = 0.99  # a probe at or above this at every layer cannot show a difference
SMALL_GROUPS = 5  # jackknife groups of fewer inputs than this give unreliable intervals
CLEAR_CHANGE = 0.99  # a similarity below this is a change worth naming, whatever its interval
WIDE_METRIC = 5.0  # percent points: an eval set that measures its metric only to +- this or worse


# -- helpers --------------------------------------------------------------------------------
def measures(results: StudyResult) -> list[str]:
    """The study's measures in the order its ``compare.measures`` gives them."""
    some = next(iter(next(iter(results.compare.values())).values()))
    ordered = (results.config.get("compare") or {}).get("measures") or list(some.values)
    ordered = [ordered] if isinstance(ordered, str) else ordered
    return [m for m in ordered if m in some.values]


def _points(value: float) -> str:
    return f"{round(float(value), 1) + 0.0:+.1f}"


def _with_interval(value: float, low: float | None, high: float | None) -> str:
    if low is None or not np.isfinite(low):
        return similarity_text(value)
    return f"{similarity_text(value)} [{similarity_text(low)}, {similarity_text(high)}]"


def _listed(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + f" and {names[-1]}"


def _bounds(result: LayerComparison, measure: str) -> tuple[np.ndarray, np.ndarray] | None:
    if measure not in result.intervals:
        return None
    low, high = result.intervals[measure]
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def _reference_set(results: StudyResult, task: str) -> str:
    """The task's first in-domain evaluation set, else its first set."""
    sets = list(results.compare[task])
    return next((s for s in sets if results.in_domain(task, s)), sets[0])


def similarity_figure(measure: str) -> str:
    return f"similarity_{measure}.png"


# -- base vs fine-tuned, layer by layer ------------------------------------------------------
def changed_layers(result: LayerComparison, measure: str) -> dict:
    """The first layer whose interval lies below 1 (None: none does, or no intervals) and
    the two layers of lowest similarity."""
    values = np.asarray(result.values[measure], dtype=np.float64)
    bounds = _bounds(result, measure)
    first = None
    if bounds is not None:
        below = np.flatnonzero(np.isfinite(bounds[1]) & (bounds[1] < 1.0))
        first = int(below[0]) if below.size else None
    finite = np.flatnonzero(np.isfinite(values))
    lowest = [int(i) for i in finite[np.argsort(values[finite], kind="stable")][:2]]
    clear = np.flatnonzero(np.isfinite(values) & (values < CLEAR_CHANGE))
    return {"first_below_1": first, "first_clear": int(clear[0]) if clear.size else None, "lowest": lowest}


def _layer_value(result: LayerComparison, measure: str, i: int) -> str:
    """"layer 3 (0.981 [0.975, 0.987])": a layer's similarity with its interval."""
    bounds = _bounds(result, measure)
    low, high = (bounds[0][i], bounds[1][i]) if bounds is not None else (None, None)
    return f"{result.layers[i]} ({_with_interval(result.values[measure][i], low, high)})"


def _layer_difference(layers: list[str], d: dict, i: int) -> str:
    return (
        f"{layers[i]} {_points_sim(d['difference'][i])} "
        f"[{_points_sim(d['low'][i])}, {_points_sim(d['high'][i])}]"
    )


def _similarity_findings(results: StudyResult) -> list[Finding]:
    out = []
    for measure in measures(results):
        for task in results.compare:
            set_name = _reference_set(results, task)
            result = results.compare[task][set_name]
            found = changed_layers(result, measure)
            bounds = _bounds(result, measure)
            shown = functools.partial(_layer_value, result, measure)

            domain = "in-domain" if results.in_domain(task, set_name) else "out-of-domain"
            where = f"{task}, {measure.upper()} on {set_name} ({domain})"
            lowest = " and ".join(shown(i) for i in found["lowest"])
            if bounds is None:
                text = (
                    f"{where}: without intervals no layer can be said to differ from the base "
                    f"(set compare.ci); the lowest similarities are at {lowest}."
                )
            elif found["first_below_1"] is None:
                text = (
                    f"{where}: no layer's {LEVEL:.0%} interval lies below 1, so no change is "
                    f"detected; the lowest similarities are at {lowest}."
                )
            else:
                text = (
                    f"{where}: the first layer whose {LEVEL:.0%} interval lies below 1 is "
                    f"{shown(found['first_below_1'])}"
                )
                if found["first_clear"] is None:
                    text += f"; no layer falls below {CLEAR_CHANGE}"
                elif found["first_clear"] != found["first_below_1"]:
                    text += f"; the first below {CLEAR_CHANGE} is {shown(found['first_clear'])}"
                text += f"; the layers that changed most are {lowest}."
            out.append(
                Finding(
                    "similarity",
                    text,
                    similarity_figure(measure),
                    {"task": task, "set": set_name, "measure": measure, **found},
                )
            )
    return out


def domain_difference(in_domain: LayerComparison, out_domain: LayerComparison, measure: str) -> dict:
    """Per layer: out-of-domain minus in-domain similarity, with an interval from the two
    jackknife standard errors (the sets are independent samples): diff +- t sqrt(se1^2 + se2^2)."""
    diff = np.asarray(out_domain.values[measure], dtype=np.float64) - np.asarray(
        in_domain.values[measure], dtype=np.float64
    )
    a, b = _bounds(in_domain, measure), _bounds(out_domain, measure)
    if a is None or b is None:
        return {"difference": diff, "low": None, "high": None}
    t_in = student_t.ppf(0.5 + in_domain.ci / 2, in_domain.ci_groups - 1)
    t_out = student_t.ppf(0.5 + out_domain.ci / 2, out_domain.ci_groups - 1)
    se = np.sqrt(((a[1] - a[0]) / (2 * t_in)) ** 2 + ((b[1] - b[0]) / (2 * t_out)) ** 2)
    t = student_t.ppf(0.5 + LEVEL / 2, min(in_domain.ci_groups, out_domain.ci_groups) - 1)
    return {"difference": diff, "low": diff - t * se, "high": diff + t * se}


def _domain_findings(results: StudyResult) -> list[Finding]:
    out = []
    for measure in measures(results):
        for task, sets in results.compare.items():
            inside = [s for s in sets if results.in_domain(task, s)]
            outside = [s for s in sets if not results.in_domain(task, s)]
            if not inside or not outside:
                continue
            a, b = sets[inside[0]], sets[outside[0]]
            d = domain_difference(a, b, measure)
            where = f"{task}, {measure.upper()}: out-of-domain {outside[0]} minus in-domain {inside[0]}"
            layers = a.layers
            if d["low"] is None:
                top = len(layers) - 1
                text = (
                    f"{where}: {_points_sim(d['difference'][top])} at {layers[top]}; without intervals "
                    "(set compare.ci) the difference cannot be told from noise."
                )
                out.append(
                    Finding(
                        "domain",
                        text,
                        similarity_figure(measure),
                        {"task": task, "measure": measure, "more_similar": None, "less_similar": None},
                    )
                )
                continue
            finite = np.isfinite(d["low"]) & np.isfinite(d["high"])
            if not finite.any():  # undefined at every layer: nothing to state
                continue
            more = [int(i) for i in np.flatnonzero(finite & (d["low"] > 0))]
            less = [int(i) for i in np.flatnonzero(finite & (d["high"] < 0))]
            biggest = int(np.nanargmax(np.abs(np.where(finite, d["difference"], np.nan))))

            shown = functools.partial(_layer_difference, layers, d)

            parts = []
            if more:
                parts.append(
                    f"out-of-domain inputs stayed more similar to the base at "
                    f"{_listed([layers[i] for i in more])}"
                )
            if less:
                parts.append(f"they changed more than in-domain ones at {_listed([layers[i] for i in less])}")
            if not parts:
                parts.append(f"no layer's {LEVEL:.0%} interval of the difference excludes 0")
            text = f"{where}: {'; '.join(parts)} (largest difference: {shown(biggest)})."
            out.append(
                Finding(
                    "domain",
                    text,
                    similarity_figure(measure),
                    {
                        "task": task,
                        "measure": measure,
                        "in": inside[0],
                        "out": outside[0],
                        "more_similar": more,
                        "less_similar": less,
                        "largest": biggest,
                    },
                )
            )
    return out


def _points_sim(value: float) -> str:
    return f"{round(float(value), 3) + 0.0:+.3f}"  # + 0.0: no "-0.000"


# -- probes -----------------------------------------------------------------------------------
def probe_change(base, tuned, task_index: int, difference: dict | None = None) -> dict:
    """Per layer: fine-tuned minus base accuracy (percent points) with its bootstrap
    ``difference`` over the eval sentences (a Difference dict; with seeds, over the seeds
    too), or, for results without it, Newcombe's interval from the two Wilson intervals
    (unpaired: conservative, since both score the same rows)."""
    j = task_index
    task = base.tasks[j]
    if difference is not None:
        change, low, high = (100 * as_array(difference[k])[:, j] for k in ("estimate", "low", "high"))
        return {"task": task, "change": change, "low": low, "high": high}
    p1, p2 = base.scores["accuracy"][:, j], tuned.scores["accuracy"][:, j]
    l1, u1 = (x[:, j] for x in base.interval("accuracy", LEVEL))
    l2, u2 = (x[:, j] for x in tuned.interval("accuracy", LEVEL))
    diff = p2 - p1
    low = diff - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = diff + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return {"task": task, "change": 100 * diff, "low": 100 * low, "high": 100 * high}


def _probe_findings(results: StudyResult) -> list[Finding]:
    out = []
    probes = results.probes or {}
    if "base" not in probes:
        return out
    for model, sets in probes.items():
        if model == "base":
            continue
        for set_name, tuned in sets.items():
            base = probes["base"][set_name]
            difference = ((results.probe_changes or {}).get(model) or {}).get(set_name, {}).get("accuracy")
            for j, task in enumerate(tuned.tasks):
                if tuned.main_metric(task) not in PROPORTIONS or not tuned.n_eval.get(task):
                    continue
                c = probe_change(base, tuned, j, difference)
                if not np.isfinite(c["change"]).any():
                    continue
                layers = tuned.layers
                drops = [int(i) for i in np.flatnonzero(c["high"] < 0)]
                gains = [int(i) for i in np.flatnonzero(c["low"] > 0)]
                biggest = int(np.nanargmax(np.abs(c["change"])))
                largest = (
                    f"{layers[biggest]}: {_points(c['change'][biggest])} points "
                    f"[{_points(c['low'][biggest])}, {_points(c['high'][biggest])}]"
                )
                parts = []
                if drops:
                    parts.append(f"lower after fine-tuning at {_listed([layers[i] for i in drops])}")
                if gains:
                    parts.append(f"higher at {_listed([layers[i] for i in gains])}")
                level = difference["a"]["level"] if difference is not None else LEVEL
                verdict = "; ".join(parts) if parts else f"no layer's change is significant at {level:.0%}"
                over = (f"Multi-Bootstrap over {len(tuned.seeds)} seeds and" if tuned.seeds
                        else "paired bootstrap over")
                how = "" if difference is None else f", {over} the eval sentences"
                text = (f"{task} probe on {set_name}, {model} vs base: {verdict} (largest change "
                        f"{largest}{how}).")
                out.append(
                    Finding(
                        "probes",
                        text,
                        f"probes_{set_name}.png",
                        {
                            "model": model,
                            "set": set_name,
                            "task": task,
                            "drops": drops,
                            "gains": gains,
                            "largest": biggest,
                        },
                    )
                )
    return out


# -- ablations and isotropy ---------------------------------------------------------------------
def _at_baseline(value_percent: float, baseline: dict, base_percent: float) -> bool:
    """Whether the metric's Wilson interval (over the baseline's n units) reaches the baseline."""
    low, _ = wilson(value_percent / 100, baseline["n"], LEVEL)
    return bool(low * 100 <= base_percent)


def _ablation_findings(results: StudyResult) -> list[Finding]:
    out = []
    for entry in results.ablations:
        r = entry.result
        values = r.percents()
        ks = [row["k"] for row in r.rows]
        scale = 1 if r.percent else 100
        lows = [row["bootstrap"]["low"] * scale for row in r.rows] if r.seeds else None
        if r.seeds:  # the mean over seeds with its Multi-Bootstrap interval
            highs = [row["bootstrap"]["high"] * scale for row in r.rows]
            shown = ", ".join(f"{v:.1f}% [{low:.1f}, {high:.1f}] at k = {k}"
                              for k, v, low, high in zip(ks, values, lows, highs, strict=True))
            shown += f" (means over {len(r.seeds)} seeds)"
        else:
            shown = ", ".join(f"{v:.1f}% at k = {k}" for k, v in zip(ks, values, strict=True))
        name = f"ablation_{r.kind}_{entry.name}" + (f"_{r.side}" if r.side else "") + ".png"
        facts = {"name": entry.name, "kind": r.kind, "ks": ks, "values": values, "at_baseline": []}
        text = f"{r.kind} ablation of {entry.name} ({r.metric}): {shown}"
        if len(values) > 1:
            steps = np.diff(values)
            i = int(np.argmin(steps))
            facts["largest_drop"] = (ks[i], ks[i + 1])
            text += (
                f"; the largest drop is from k = {ks[i]} to k = {ks[i + 1]} ({_points(steps[i])} points)"
                if steps[i] < 0
                else "; the metric never falls as k grows"
            )
        if r.baseline is not None:
            base = r.baseline_percent()
            at = ([k for k, low in zip(ks, lows, strict=True) if low <= base] if lows is not None else
                  [k for k, v in zip(ks, values, strict=True) if _at_baseline(v, r.baseline, base)])
            facts.update(baseline=base, at_baseline=at)
            text += f". The no-learning baseline ({r.baseline['rule']}) is {base:.1f}%: " + (
                f"k = {_listed([str(k) for k in at])} {'is' if len(at) == 1 else 'are'} at it "
                "(within the 95% interval)"
                if at
                else "every k stays above it"
            )
        out.append(Finding("ablation", text + ".", name, facts))
    return out


ISOTROPY_SHOWN = (("mean_cosine", "mean cosine", 3), ("effective_rank", "effective rank", 1))


def _isotropy_findings(results: StudyResult) -> list[Finding]:
    out = []
    for kind, task, detail, result in results.isotropy_details():
        top = len(result.layers) - 1
        facts = {"task": task, "rows": kind, "set": detail.set, "layer": top}
        changes = []
        for key, label, digits in ISOTROPY_SHOWN:
            before = result.isotropy["base"][key][top]
            after = result.isotropy["finetuned"][key][top]
            facts[key] = (before, after)
            changes.append(f"{label} {before:.{digits}f} -> {after:.{digits}f}")
        text = (
            f"Isotropy of the {kind} rows of {task}'s {result.layers[top]} on {detail.set}: "
            f"{', '.join(changes)} (base -> fine-tuned; one measurement each, no interval)."
        )
        out.append(Finding("isotropy", text, f"isotropy_{kind}.png", facts))
    return out


def findings(results: StudyResult) -> list[Finding]:
    """Every finding, topic by topic: similarity, in- vs out-of-domain, probes, ablations,
    isotropy."""
    return [
        *seeds.metric_findings(results),
        *seeds.procedure_findings(results),
        *_similarity_findings(results),
        *_domain_findings(results),
        *_probe_findings(results),
        *_ablation_findings(results),
        *_isotropy_findings(results),
    ]


# -- sanity flags -------------------------------------------------------------------------------
def did_not_learn(results: StudyResult) -> set[str]:
    """The tasks whose fine-tuned model scores at its no-learning baseline."""
    return {f.facts["task"] for f in _chance_flags(results)}


def _chance_flags(results: StudyResult) -> list[Flag]:
    out = []
    for name, task in results.tasks.items():
        if task.value is None or not task.baseline:
            continue
        value, base = task.as_percent(task.value), task.as_percent(task.baseline["value"])
        if task.bootstrap:  # over seeds: the Multi-Bootstrap interval of the mean
            low, high = (task.as_percent(task.bootstrap[k]) for k in ("low", "high"))
            value = f"{value:.1f}% (the mean over {len(task.runs)} seeds)"
        else:
            low, high = (100 * b for b in wilson(value / 100, task.baseline["n"], LEVEL))
            value = f"{value:.1f}%"
        if low <= base:
            out.append(
                Flag(
                    "chance",
                    (
                        f"{name} did not learn its task: {task.metric} {value} [{low:.1f}, {high:.1f}] "
                        "is at its "
                        f"no-learning baseline of {base:.1f}% ({task.baseline['rule']}) on "
                        f"{task.baseline['n']} eval "
                        "units. Its layer changes show what fine-tuning did without learning the task, not "
                        "what "
                        "learning it takes; read its curves as a control, and do not compare them with the "
                        "other "
                        f"tasks' as effects of the task."
                    ),
                    {"task": name, "value": task.as_percent(task.value), "baseline": base},
                )
            )
    return out


def _probe_flags(results: StudyResult) -> list[Flag]:
    out = []
    probes = results.probes or {}
    sets = sorted({s for per_set in probes.values() for s in per_set})
    for set_name in sets:
        by_model = {m: per_set[set_name] for m, per_set in probes.items() if set_name in per_set}
        some = next(iter(by_model.values()))
        for j, task in enumerate(some.tasks):
            metric = some.main_metric(task)
            if metric not in PROPORTIONS:
                continue
            scores = np.stack([r.scores[metric][:, j] for r in by_model.values()])
            if not np.isfinite(scores).any():
                continue
            if np.nanmin(scores) >= CEILING:
                out.append(
                    Flag(
                        "ceiling",
                        (
                            f"The {task} probe is at ceiling on {set_name}: {100 * np.nanmin(scores):.1f}% "
                            "or more at "
                            "every layer of every model. It cannot show a difference between layers or "
                            "models; "
                            f"a loss there would not be seen. Probe harder data (more labels, real text)."
                        ),
                        {"set": set_name, "task": task, "min": float(np.nanmin(scores))},
                    )
                )
            labels = len(some.vocabularies.get(task, [])) or None
            if labels and np.nanmax(scores) < 2 / labels:
                out.append(
                    Flag(
                        "floor",
                        (
                            f"The {task} probe is at floor on {set_name}: at most "
                            f"{100 * np.nanmax(scores):.1f}% at "
                            f"any layer, less than twice uniform guessing among {labels} labels. It has "
                            "nothing to "
                            f"lose or gain: check the labels and the number of training rows."
                        ),
                        {"set": set_name, "task": task, "max": float(np.nanmax(scores))},
                    )
                )
            selectivity = [
                r.scores["selectivity"][:, j] for r in by_model.values() if "selectivity" in r.scores
            ]
            if selectivity:
                s = np.stack(selectivity)
                negative = int(np.sum(np.any(s < 0, axis=0)))
                if negative:
                    out.append(
                        Flag(
                            "negative_selectivity",
                            (
                                f"The {task} probe's selectivity is negative at {negative} of {s.shape[1]} "
                                "layers on "
                                f"{set_name} (lowest {100 * np.nanmin(s):+.1f} points): its control task, a "
                                "random "
                                f"label fixed per word type, is easier to fit than {task} itself. That "
                                "happens when "
                                f"few word types repeat often and {task} depends on context more than on "
                                "the word. It "
                                "says the control is too easy on this data, not that the layers lack "
                                f"{task}: compare "
                                f"accuracies across layers and models instead of selectivity."
                            ),
                            {"set": set_name, "task": task, "layers": negative, "min": float(np.nanmin(s))},
                        )
                    )
    return out


def _small_eval_flags(results: StudyResult) -> list[Flag]:
    out = []
    seen = set()
    for sets in results.compare.values():
        for set_name, result in sets.items():
            if set_name in seen or result.ci is None:
                continue
            seen.add(set_name)
            per_group = result.n_inputs / result.ci_groups
            if per_group < SMALL_GROUPS:
                out.append(
                    Flag(
                        "small_eval",
                        (
                            f"The evaluation set {set_name} has {result.n_inputs} inputs in "
                            f"{result.ci_groups} "
                            f"jackknife groups ({per_group:.1f} per group): intervals from groups that "
                            "small are "
                            f"unreliable, so its 'interval excludes 1' findings are too. Use at least "
                            f"{SMALL_GROUPS * result.ci_groups} inputs, or fewer groups (compare.ci_groups)."
                        ),
                        {"set": set_name, "inputs": result.n_inputs, "groups": result.ci_groups},
                    )
                )
    for name, task in results.tasks.items():
        if task.value is None or not task.baseline:
            continue
        value = task.as_percent(task.value)
        low, high = (100 * b for b in wilson(value / 100, task.baseline["n"], LEVEL))
        half = (high - low) / 2
        if half > WIDE_METRIC:
            out.append(
                Flag(
                    "wide_metric",
                    (
                        f"{name}'s eval set ({task.baseline['n']} units) measures {task.metric} only to "
                        "about "
                        f"+-{half:.1f} points ({value:.1f}% [{low:.1f}, {high:.1f}]): differences between "
                        "runs or "
                        f"ablation steps smaller than that are noise."
                    ),
                    {"task": name, "half_width": half},
                )
            )
    return out


def flags(results: StudyResult) -> list[Flag]:
    """Every sanity flag: models at their no-learning baseline (and seeds whose runs are),
    probes at ceiling or floor, negative selectivity, evaluation sets too small for their
    intervals."""
    return [*_chance_flags(results), *seeds.degenerate_flags(results), *_probe_flags(results),
            *_small_eval_flags(results)]
