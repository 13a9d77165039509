"""``ftlens.ablate``: the paper's layer ablations as sweeps over k, each a table of the
task metric by k (with the fine-tuned models' folders) and a plot.

- "freeze": fine-tune once per k with the embeddings and the bottom k layers fixed;
- "reinit": fine-tune once per k with the top k layers re-initialized first;
- "revert": fine-tune once, then put the base model's weights back into the layers above
  k (``side="above"``) or up to k (``"below"``, the embeddings too), keep the head, and
  evaluate without retraining.

The sweep's folder holds one run folder per fine-tuning (reused when rerun),
``ablation.json`` (rewritten after every k) and ``ablation.png``. With ``seeds``, every k
is fine-tuned (for "revert": the model is fine-tuned, then reverted) once per seed, and each
k's metric gets the Multi-Bootstrap interval over the seeds and the eval examples.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .._util import files
from ..activations.capture import layer_blocks
from ..activations.models import model_label, model_source
from .layers import SIDES, _check_k, revert_layers
from .model import load_task_model
from .options import FinetuneOptions
from .run import evaluate, evaluate_scores, finetune_run, finished_with, get_task, run_settings

KINDS = ("freeze", "revert", "reinit")
X_LABELS = {"freeze": "k: embeddings and bottom k layers frozen", "reinit": "k: top k layers re-initialized",
            "revert": "k: layers {side} k reverted to the base model"}


@dataclass
class AblationResult:
    """``rows``: one per k, {"k", "value" (the task's headline metric), "metrics" (all
    eval metrics), "model_dir"} in the order swept. With ``seeds``, "value" is the mean over
    the seeds, "values" each seed's, "bootstrap" the Multi-Bootstrap interval
    (``Interval.to_dict``) and "model_dirs" each seed's model."""

    kind: str
    task: str
    metric: str
    base: str
    side: str | None = None
    rows: list[dict] = field(default_factory=list)
    baseline: dict | None = None  # what a model that learned nothing scores (FinetuneTask.baseline)
    percent: bool = False  # the metric is in percent (else a fraction of 1)
    seeds: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AblationResult:
        return cls(**data)

    def series(self) -> str:
        """The name of the metric's line by k."""
        return f"mean of {len(self.seeds)} seeds, by k" if self.seeds else "fine-tuned, by k"

    def percents(self) -> list[float]:
        """Each k's metric in percent."""
        return [row["value"] * (1 if self.percent else 100) for row in self.rows]

    def baseline_percent(self) -> float | None:
        return None if self.baseline is None else self.baseline["value"] * (1 if self.percent else 100)

    def table(self) -> str:
        """The metric (%) by k, with the no-learning baseline under it."""
        lines = [f"{self.kind} ablation of {self.base} on {self.task} ({self.metric}, %)",
                 f"{'k':>4}  {self.metric:>10}"]
        values = zip(self.rows, self.percents(), strict=True)
        lines += [f"{row['k']:>4}  {value:>10.2f}" for row, value in values]
        if self.baseline is not None:
            lines.append(f"baseline {self.baseline_percent():.2f} ({self.baseline['rule']})")
        return "\n".join(lines)

    def save(self, path) -> Path:
        return files.write_json(path, self.to_dict())

    def plot(self, path=None, axes=None):
        """The metric (%) by k on a 0-100 axis, with the no-learning baseline as a dotted
        line; returns the matplotlib Figure, writes a PNG to ``path`` when given, draws
        into ``axes`` when given."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 3.8)) if axes is None else (axes.figure, axes)
        ks = [row["k"] for row in self.rows]
        scale = 1 if self.percent else 100
        for i, seed in enumerate(self.seeds):
            axes.plot(ks, [row["values"][i] * scale for row in self.rows], ls="", marker=".", color="C0",
                      alpha=0.5, label=f"seed {seed}")
        if self.seeds:
            low, high = ([row["bootstrap"][side] * scale for row in self.rows] for side in ("low", "high"))
            axes.fill_between(ks, low, high, color="C0", alpha=0.15, lw=0)
        (mean,) = axes.plot(ks, self.percents(), marker="o", label=self.series())
        shown = [mean]
        if self.baseline is not None:
            shown.append(axes.axhline(self.baseline_percent(), color="gray", ls=":",
                                      label=f"no learning: {self.baseline['rule']}"))
        axes.set_ylim(0, 100)
        axes.set_xticks(ks)
        axes.set_xlabel(X_LABELS[self.kind].format(side=self.side))
        axes.set_ylabel(f"{self.task} {self.metric} (%)")
        axes.set_title(f"{self.kind} ablation, {model_label(self.base)}")
        axes.grid(alpha=0.3)
        axes.legend(handles=shown, fontsize=7, framealpha=0.6)
        figure.tight_layout()
        if path is not None:
            files.atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=120, format="png"))
            plt.close(figure)
        return figure


def ablate(kind: str, base, task: str, train, eval, out_dir, ks=None, *, side: str = "above",  # noqa: A002
           finetuned=None, progress: bool = True, keep_checkpoints: bool = False, seeds=None,
           workers: int | None = None, **options) -> AblationResult:
    """Sweeps one of the paper's layer ablations over layer counts k.

    Args:
        kind: "freeze" (fine-tune with the embeddings and the bottom k layers fixed),
            "reinit" (fine-tune with the top k layers re-initialized first) or "revert"
            (put the base model's weights back into some layers of a fine-tuned model, keep
            its head, evaluate without retraining).
        base, task, train, eval: as ``ftlens.finetune``.
        out_dir: the sweep's folder: one run folder per k (reused when rerun),
            ``ablation.json`` (rewritten after every k) and ``ablation.png``.
        ks: the layer counts (default: 0..L, every count of ``base``'s L layers).
        side: revert the layers above k ("above": k = L is the fine-tuned model, k = 0 the
            base encoder under the fine-tuned head) or up to k, the embeddings too ("below":
            k = 0 is the fine-tuned model).
        finetuned: a finished ``ftlens.finetune`` run folder. "revert" reverts its layers
            (None: it makes one in ``out_dir/finetuned``); "freeze" and "reinit" take it as
            their k = 0 when it was made with the same base, data and options, instead of
            training that model again.
        progress, keep_checkpoints: as ``ftlens.finetune``.
        seeds, workers: every k once per seed, side by side (as ``ftlens.finetune``); then
            ``finetuned`` is the folder of a finished ``finetune(..., seeds=...)`` of them.
        **options: fine-tuning options (``FinetuneOptions`` fields) for every run.

    Returns:
        An ``AblationResult``: the metric by k, and the baseline of a model that learned
        nothing (the majority class, or a parser that reads no word)."""
    import transformers
    from tqdm.auto import tqdm

    if kind not in KINDS:
        raise ValueError(f"unknown ablation {kind!r}; the ablations are {KINDS}")
    if side not in SIDES:
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    spec = get_task(task)
    clashing = sorted({"freeze_bottom", "reinit_top"} & set(options))
    if clashing:
        raise ValueError(f"{clashing} is what the sweep sets for each k: leave it out of the options")
    base_encoder = transformers.AutoModel.from_pretrained(model_source(base))
    blocks = layer_blocks(base_encoder)
    ks = list(range(len(blocks) + 1)) if ks is None else list(ks)
    if not ks:
        raise ValueError("ks is empty: pass the layer counts to sweep, e.g. [0, 2, 4, 6]")
    for k in ks:
        _check_k(k, blocks, "every k")
    out = files.check_writable(out_dir)
    opts = FinetuneOptions(**options)
    result = AblationResult(kind, task, spec.metric, str(base), side if kind == "revert" else None,
                            baseline=spec.baseline(eval, opts), percent=spec.percent)
    if seeds is not None:
        from .seeds import check_seeds

        result.seeds = check_seeds(seeds)
        common = dict(side=side, finetuned=finetuned, progress=progress, keep_checkpoints=keep_checkpoints,
                      workers=workers)
        return _over_seeds(result, base, base_encoder, spec, train, eval, out, ks, common, options)
    if kind == "revert":
        run = Path(finetuned) if finetuned is not None else finetune_run(
            base, task, train, eval, out / "finetuned", progress=progress, keep_checkpoints=keep_checkpoints,
            **options).out_dir
        recorded = _finished_run(run, task)
        tokenizer = transformers.AutoTokenizer.from_pretrained(run / "model")
    for k in tqdm(ks, desc=f"{kind} sweep", disable=not progress):
        if kind == "revert":
            model = load_task_model(run / "model")
            revert_layers(model, base_encoder, k, side=side)
            metrics = evaluate(model, task, eval, tokenizer, **recorded)
            folder = run / "model"
        else:
            setting = {"freeze_bottom": k} if kind == "freeze" else {"reinit_top": k}
            folder = out / f"{kind}-{k}"
            if k == 0 and finetuned is not None and finished_with(
                    finetuned, run_settings(base, task, train, eval, opts)):
                folder = Path(finetuned)  # the same run: reused, not trained again
            done = finetune_run(base, task, train, eval, folder, progress=progress,
                            keep_checkpoints=keep_checkpoints, **options, **setting)
            metrics, folder = done.metrics, done.model_dir
        result.rows.append({"k": k, "value": metrics[f"eval_{spec.metric}"], "metrics": metrics,
                            "model_dir": str(folder)})
        result.save(out / "ablation.json")
    result.plot(out / "ablation.png")
    return result


def _over_seeds(result: AblationResult, base, base_encoder, spec, train, eval, out: Path, ks: list[int],  # noqa: A002
                common: dict, options: dict) -> AblationResult:
    """The sweep with every k fine-tuned (or reverted) once per seed."""
    from tqdm.auto import tqdm

    from ..similarity.bootstrap import multibootstrap
    from .seeds import finetune_seeds, stack_scores

    seeds, kind, task = result.seeds, result.kind, result.task
    opts = FinetuneOptions(**options)
    run_common = dict(workers=common["workers"], progress=common["progress"],
                      keep_checkpoints=common["keep_checkpoints"])
    finetuned = Path(common["finetuned"]) if common["finetuned"] is not None else None
    if kind == "revert":
        tuned = finetune_seeds(base, task, train, eval, finetuned or out / "finetuned", seeds, **run_common,
                               **options)
    for k in tqdm(ks, desc=f"{kind} sweep over {len(seeds)} seeds", disable=not common["progress"]):
        if kind == "revert":
            scores = [_reverted_scores(run, base_encoder, k, common["side"], task, eval)
                      for run in tuned.runs]
            dirs = [str(run.model_dir) for run in tuned.runs]
        else:
            setting = {"freeze_bottom": k} if kind == "freeze" else {"reinit_top": k}
            folder = out / f"{kind}-{k}"
            if k == 0 and finetuned is not None and all(finished_with(
                    finetuned / f"seed-{s}", run_settings(base, task, train, eval, replace(opts, seed=s)))
                    for s in seeds):
                folder = finetuned  # the same runs: reused, not trained again
            runs = finetune_seeds(base, task, train, eval, folder, seeds, **run_common, **options, **setting)
            scores = [run.scores() for run in runs.runs]
            dirs = [str(run.model_dir) for run in runs.runs]
        num, den, scale = stack_scores(scores, spec.metric, seeds)
        interval = multibootstrap(num, den, seeds=seeds, scale=scale)
        values = [s.metrics[spec.metric] for s in scores]
        result.rows.append({"k": k, "value": float(np.mean(values)), "values": values, "seeds": seeds,
                            "bootstrap": interval.to_dict(), "metrics": {}, "model_dirs": dirs,
                            "model_dir": dirs[0]})
        result.save(out / "ablation.json")
    result.plot(out / "ablation.png")
    return result


def _reverted_scores(run, base_encoder, k: int, side: str, task: str, eval):  # noqa: A002
    """The per-example scores of a run's model with its layers reverted at k."""
    import transformers

    recorded = _finished_run(run.out_dir, task)
    model = load_task_model(run.model_dir)
    revert_layers(model, base_encoder, k, side=side)
    tokenizer = transformers.AutoTokenizer.from_pretrained(run.model_dir)
    return evaluate_scores(model, get_task(task), eval, tokenizer, FinetuneOptions(**recorded), False)[1]


def _finished_run(run: Path, task: str) -> dict:
    """The options of the finished fine-tuning run in ``run``."""
    if not (run / "metrics.json").is_file() or not (run / "options.json").is_file():
        raise FileNotFoundError(f"{run} holds no finished ftlens.finetune run (options.json and "
                                "metrics.json): pass the folder of a finished run as finetuned=")
    settings = json.loads((run / "options.json").read_text())
    if settings["task"] != task:
        raise ValueError(f"{run} was fine-tuned on task {settings['task']!r}, not {task!r}")
    return settings["options"]
