"""``ProbeResult``: every metric of every probe, layer x task."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .._util.jsonresult import JsonResult, listed, unlisted
from ..activations.models import model_label
from ..similarity.intervals import wilson
from .resample import PROPORTIONS, sentence_intervals

METRICS = ("accuracy", "macro_f1", "control_accuracy", "selectivity", "mdl_kbits", "mdl_compression",
           "uuas", "dspr", "root_accuracy", "nspr")
MAIN_METRIC = {"distance": "uuas", "depth": "root_accuracy"}  # every other task: accuracy
SHARES = (*PROPORTIONS, "macro_f1", "uuas", "root_accuracy")  # metrics on a 0-1 scale


@dataclass
class ProbeResult(JsonResult):
    """Probe scores on the eval store. Each metric is an array [layers, tasks] (NaN where
    it does not apply), read as ``result.accuracy``, ``result.selectivity``, ...:

    * accuracy, macro_f1: classification tasks (eval labels never seen in training count
      as wrong; ``unseen`` counts them per task);
    * control_accuracy, selectivity: the task's control task and accuracy - control;
    * mdl_kbits, mdl_compression: online codelength (kbits) and uniform / online;
    * uuas, dspr (distance probe), root_accuracy, nspr (depth probe).

    ``strength`` holds the chosen regularization per (layer, task): the logistic l2 or the
    ridge alpha. ``layers`` are the probed layers' names, ``n_train``/``n_eval`` the rows
    (pairs, sentences) per task.

    ``by_input`` counts, per eval input (sentence), the rows right: "accuracy" and
    "control_accuracy" [layers, tasks, inputs], and the rows scored: "accuracy_rows",
    "control_accuracy_rows" [tasks, inputs] (``eval_data``: the eval inputs' fingerprint);
    a bootstrap over inputs resamples them. A result combined over fine-tuning seeds
    (``probes_across_seeds``) has ``seeds``, each seed's scores ``seed_scores`` {metric:
    [seeds, layers, tasks]} and Multi-Bootstrap ``intervals`` {metric: [2, layers, tasks]}
    for accuracy, control_accuracy and selectivity at ``level`` (``interval_method``
    "multibootstrap").
    """

    model: str
    layers: list[str]
    tasks: list[str]
    kind: str
    rows: str
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    strength: np.ndarray | None = None
    n_train: dict[str, int] = field(default_factory=dict)
    n_eval: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)
    vocabularies: dict[str, list] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    eval_data: str = ""
    by_input: dict[str, np.ndarray] = field(default_factory=dict)
    seeds: list[int] | None = None
    seed_scores: dict[str, np.ndarray] = field(default_factory=dict)
    intervals: dict[str, np.ndarray] = field(default_factory=dict)
    interval_method: str = "wilson"
    level: float | None = None

    def __getattr__(self, name: str):
        if name in METRICS:
            return self.__dict__.get("scores", {}).get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def main_metric(self, task: str) -> str:
        return MAIN_METRIC.get(task, "accuracy")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["scores"] = {name: listed(values) for name, values in self.scores.items()}
        out["strength"] = None if self.strength is None else listed(self.strength)
        out["by_input"] = {name: np.asarray(v).astype(np.int64).tolist() for name, v in self.by_input.items()}
        for name in ("seed_scores", "intervals"):
            out[name] = {metric: listed(v) for metric, v in getattr(self, name).items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ProbeResult:
        data = dict(data)
        data["scores"] = {name: unlisted(values) for name, values in data.get("scores", {}).items()}
        if data.get("strength") is not None:
            data["strength"] = unlisted(data["strength"])
        for name in ("by_input", "seed_scores", "intervals"):
            data[name] = {metric: unlisted(v) for metric, v in data.get(name, {}).items()}
        return cls(**data)

    def interval(self, metric: str = "accuracy", level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Intervals (low, high), each [layers, tasks], of "accuracy" or "control_accuracy"
        at ``level`` (default 0.95): the percentile bootstrap over the eval sentences (1,000
        draws from seed 0; the words of one sentence are not independent draws, so an
        interval over rows would be too narrow), from ``by_input``; Wilson's over each
        task's eval rows (``n_eval``) for a result without per-input counts; for a result
        with stored ``intervals`` (combined over seeds), those, at the level they were drawn
        at."""
        if metric not in PROPORTIONS:
            raise ValueError(f"intervals are for proportions {PROPORTIONS}, got {metric!r}")
        if metric not in self.scores:
            raise ValueError(f"this result has no {metric!r}; it has {sorted(self.scores)}")
        if metric in self.intervals:
            if level is not None and level != self.level:
                raise ValueError(f"this result's Multi-Bootstrap intervals are at level {self.level}, not "
                                 f"{level}: combine the seeds again with level={level}")
            low, high = self.intervals[metric]
            return low, high
        level = 0.95 if level is None else level
        if metric in self.by_input:
            low, high = sentence_intervals(self.by_input, level)[metric]
            return low, high
        n = np.array([self.n_eval.get(task, 0) for task in self.tasks], dtype=np.float64)
        return wilson(self.scores[metric], n[None, :], level)

    def table(self, metric: str | None = None) -> str:
        """Layer x task text table of ``metric`` (default: each task's main metric, in %
        for the [0, 1] metrics), with selectivity in brackets where there are controls."""
        header = ["layer"] + [f"{t} ({metric or self.main_metric(t)})" for t in self.tasks]
        lines = [header]
        for i, layer in enumerate(self.layers):
            cells = [layer]
            for j, task in enumerate(self.tasks):
                name = metric or self.main_metric(task)
                cell = _format(name, self.scores[name][i, j]) if name in self.scores else "-"
                selectivity = self.scores.get("selectivity", np.full((i + 1, j + 1), np.nan))[i, j]
                if metric is None and not np.isnan(selectivity):
                    cell += f" [{_format('selectivity', selectivity)}]"
                cells.append(cell)
            lines.append(cells)
        widths = [max(len(row[k]) for row in lines) for k in range(len(header))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in lines)

    def plot(self, path=None, metric: str | None = None):
        """Score by layer, one line per task (each task's main metric unless ``metric``),
        with 95% bands for proportions (``interval``), on a 0-100% axis when every metric
        drawn is a share; returns the matplotlib Figure and writes it to ``path`` when given."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(7, 4))
        x = np.arange(len(self.layers))
        names = [metric or self.main_metric(task) for task in self.tasks]
        shares = all(name in SHARES for name in names)  # all on a 0-1 scale: drawn 0-100%
        scale = 100 if shares else 1
        for j, (task, name) in enumerate(zip(self.tasks, names, strict=True)):
            if name in self.scores:
                line, = axes.plot(x, scale * self.scores[name][:, j], marker="o", label=f"{task} ({name})")
                if name in PROPORTIONS and self.n_eval.get(task):
                    low, high = self.interval(name)
                    axes.fill_between(x, scale * low[:, j], scale * high[:, j], color=line.get_color(),
                                      alpha=0.15, lw=0)
        if shares:
            axes.set_ylim(0, 100)
        axes.set_xticks(x, self.layers, rotation=30)
        axes.set_xlabel("layer")
        axes.set_ylabel(f"{metric or 'score'}{' (%)' if shares else ''}")
        axes.set_title(f"probes on {model_label(self.model)}")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, framealpha=0.6)
        figure.tight_layout()
        if path is not None:
            figure.savefig(path, dpi=120)
        return figure


def _format(metric: str, value: float) -> str:
    if np.isnan(value):
        return "-"
    if metric in ("mdl_kbits", "mdl_compression", "dspr", "nspr"):
        return f"{value:.2f}"
    return f"{100 * value:.1f}"
