"""What seeds add to a study's report: each task's metric over its seeds (every seed a
point, the Multi-Bootstrap interval of the mean, the runs that did not learn), and the
tasks the study file compares (``against``), paired by seed, for the metric and for every
layer's similarity. Percent points for every accuracy-like number."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..results import ProcedureComparison, StudyResult, TaskOutcome
from .drawing import Drawn, pyplot
from .statements import LEVEL, Finding, Flag

METRIC_FIGURE = "seeds_metric.png"


def _percent(task: TaskOutcome, value: float) -> float:
    return task.as_percent(float(value))


def seeded_tasks(results: StudyResult) -> dict[str, TaskOutcome]:
    return {name: t for name, t in results.tasks.items() if t.runs}


def failed_runs(task: TaskOutcome) -> list[int]:
    """The seeds whose run scores at or below the no-learning baseline (Zhang et al.'s
    degenerate runs)."""
    if not task.baseline:
        return []
    return [run["seed"] for run, value in zip(task.runs, task.values, strict=True)
            if value <= task.baseline["value"]]


def spread(task: TaskOutcome) -> dict:
    """The metric over seeds, in percent: mean, SD, min, max, the Multi-Bootstrap interval."""
    values = np.array([_percent(task, v) for v in task.values])
    boot = task.bootstrap or {}
    return {"task": task.task, "seeds": len(values), "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "min": float(values.min()),
            "max": float(values.max()), "low": _percent(task, boot["low"]) if boot else None,
            "high": _percent(task, boot["high"]) if boot else None, "examples": boot.get("units"),
            "level": boot.get("level", LEVEL),
            "failed": failed_runs(task)}


# -- findings -----------------------------------------------------------------------------------
def metric_findings(results: StudyResult) -> list[Finding]:
    out = []
    for name, task in seeded_tasks(results).items():
        s = spread(task)
        text = (f"{name}: {task.metric} {s['mean']:.1f}% over {s['seeds']} seeds (SD {s['sd']:.1f}, "
                f"{s['min']:.1f} to {s['max']:.1f})")
        if s["low"] is not None:
            text += (f"; its {s['level']:.0%} Multi-Bootstrap interval over seeds and {s['examples']} eval "
                     f"examples is [{s['low']:.1f}, {s['high']:.1f}]")
        if task.baseline:
            base = _percent(task, task.baseline["value"])
            verb = "run is" if len(s["failed"]) == 1 else "runs are"
            text += (f"; {len(s['failed'])} of {s['seeds']} {verb} at or below the no-learning baseline "
                     f"of {base:.1f}% ({task.baseline['rule']})")
            s["baseline"] = base
        out.append(Finding("seeds", text + ".", METRIC_FIGURE, {**s, "name": name}))
    return out


def difference_text(value: float) -> str:
    """A difference of similarities with the digits that show it (+0.004, -2.1e-05)."""
    return f"{value:+.3f}" if abs(value) >= 0.001 or value == 0 else f"{value:+.1e}"


def _differs(d: dict) -> np.ndarray:
    low, high = np.asarray(d["low"], dtype=np.float64), np.asarray(d["high"], dtype=np.float64)
    return (low > 0) | (high < 0)


def procedure_findings(results: StudyResult) -> list[Finding]:
    out = []
    for p in results.procedures:
        task = results.tasks[p.task]
        d = p.metric
        delta, low, high = (_percent(task, d[k]) for k in ("estimate", "low", "high"))
        verdict = ("the interval excludes 0: the procedures differ" if low > 0 or high < 0
                   else "the interval includes 0: these runs do not show a difference")
        text = (f"{p.task} minus {p.against}: {task.metric} {delta:+.1f} points [{low:+.1f}, {high:+.1f}], "
                f"p = {d['p']:.2g} ({'paired' if d['paired'] else 'unpaired'} over {d['a']['seeds']} seeds "
                f"and {d['a']['units']} eval examples); {verdict}.")
        out.append(Finding("procedures", text, METRIC_FIGURE,
                           {"task": p.task, "against": p.against, "delta": delta, "low": low, "high": high,
                            "p": d["p"]}))
        out += _layer_differences(results, p)
    return out


def _layer_differences(results: StudyResult, p: ProcedureComparison) -> list[Finding]:
    out = []
    for set_name, by_measure in p.layers.items():
        layers = results.compare[p.task][set_name].layers
        for measure, d in by_measure.items():
            where = np.flatnonzero(_differs(d))
            named = [f"{layers[i]} ({difference_text(float(np.asarray(d['estimate'])[i]))})" for i in where]
            level = d["a"]["level"]
            text = (f"{p.task} minus {p.against}, {measure.upper()} on {set_name}: "
                    + (f"the layers whose {level:.0%} interval of the difference excludes 0 are "
                       f"{', '.join(named)}." if named else
                       f"no layer's {level:.0%} interval of the difference excludes 0."))
            out.append(Finding("procedures", text, None, {"task": p.task, "against": p.against,
                                                          "set": set_name, "measure": measure,
                                                          "layers": where.tolist()}))
    return out


def degenerate_flags(results: StudyResult) -> list[Flag]:
    out = []
    for name, task in seeded_tasks(results).items():
        failed = failed_runs(task)
        if failed and len(failed) < len(task.runs):
            out.append(Flag("degenerate", (
                f"{len(failed)} of {len(task.runs)} runs of {name} (seeds {failed}) did not learn: their "
                f"{task.metric} is at or below the no-learning baseline. The mean over seeds and its layer "
                "curves mix runs that learned with runs that did not; the strip plot shows each run."),
                {"task": name, "failed": failed}))
    return out


# -- the figure -----------------------------------------------------------------------------------
def metric_figure(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Each seeded task's metric (%) on 0-100: every seed a point, the mean with its
    Multi-Bootstrap interval, the no-learning baseline."""
    tasks = seeded_tasks(results)
    if not tasks:
        return []
    plt = pyplot()
    drawn = Drawn()
    figure, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(tasks) + 2), 3.8))
    ax.set_gid("seeds")
    offsets = np.linspace(-0.18, 0.18, max(len(t.runs) for t in tasks.values()))
    for i, (name, task) in enumerate(tasks.items()):
        s = spread(task)
        values = [_percent(task, v) for v in task.values]
        ax.plot(i + offsets[: len(values)], values, ls="", marker="o", ms=4, alpha=0.6, color="C0",
                label=f"{name}: each seed")
        for run, value in zip(task.runs, values, strict=True):
            drawn.cell("seeds", f"{name}: each seed", f"seed {run['seed']}", value)
        if s["low"] is not None:
            spread_bar = [[s["mean"] - s["low"]], [s["high"] - s["mean"]]]
            ax.errorbar([i + 0.3], [s["mean"]], yerr=spread_bar, fmt="s", color="black", capsize=3,
                        label=f"{name}: mean")
            drawn.rows.append(("seeds", f"{name}: mean", "mean", s["mean"], s["low"], s["high"]))
        if task.baseline:
            base = _percent(task, task.baseline["value"])
            series = f"{name}: no learning"
            ax.plot([i - 0.35, i + 0.4], [base, base], color="firebrick", ls=":", label=series)
            drawn.rows += [("seeds", series, edge, base, None, None) for edge in ("from", "to")]
    metrics = {t.metric for t in tasks.values()}
    one = len(metrics) == 1
    ticks = [name if one else f"{name}\n({t.metric})" for name, t in tasks.items()]
    ax.set_xticks(np.arange(len(tasks)), ticks, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"{next(iter(metrics))} (%)" if one else "each task's metric (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title("the metric of every seed's run", fontsize=9)
    drawn.save(figure, folder, METRIC_FIGURE)
    level = spread(next(iter(tasks.values())))["level"]  # every task's: the study's compare.ci
    return [(METRIC_FIGURE, f"Each task's {level:.0%} Multi-Bootstrap interval (black: mean over seeds, "
             "resampling seeds and eval examples together) beside each seed's run (blue points); dotted red: "
             "the no-learning baseline. On 0-100%.")]


def procedure_rows(results: StudyResult) -> list[list]:
    """Per comparison: the metric's difference in points with its interval and p-value."""
    rows = []
    for p in results.procedures:
        task, d = results.tasks[p.task], p.metric
        rows.append([p.task, p.against, task.metric,
                     f"{_percent(task, d['estimate']):+.2f} [{_percent(task, d['low']):+.2f}, "
                     f"{_percent(task, d['high']):+.2f}]", f"{d['p']:.3g}",
                     f"{'paired' if d['paired'] else 'unpaired'}, {d['a']['seeds']} seeds"])
    return rows
