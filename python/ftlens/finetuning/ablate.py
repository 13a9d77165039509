"""``ftlens.ablate``: the paper's layer ablations as sweeps over k, each a table of the
task metric by k (with the fine-tuned models' folders) and a plot.

- "freeze": fine-tune once per k with the embeddings and the bottom k layers fixed;
- "reinit": fine-tune once per k with the top k layers re-initialized first;
- "revert": fine-tune once, then put the base model's weights back into the layers above
  k (``side="above"``) or up to k (``"below"``, the embeddings too), keep the head, and
  evaluate without retraining.

The sweep's folder holds one run folder per fine-tuning (reused when rerun),
``ablation.json`` (rewritten after every k) and ``ablation.png``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._util import files
from ..activations.capture import layer_blocks
from ..activations.models import model_source
from .layers import SIDES, _check_k, revert_layers
from .model import load_task_model
from .run import evaluate, finetune, get_task

KINDS = ("freeze", "revert", "reinit")
X_LABELS = {"freeze": "k: embeddings and bottom k layers frozen", "reinit": "k: top k layers re-initialized",
            "revert": "k: layers {side} k reverted to the base model"}


@dataclass
class AblationResult:
    """``rows``: one per k, {"k", "value" (the task's headline metric), "metrics" (all
    eval metrics), "model_dir"} in the order swept."""

    kind: str
    task: str
    metric: str
    base: str
    side: str | None = None
    rows: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AblationResult:
        return cls(**data)

    def table(self) -> str:
        lines = [f"{self.kind} ablation of {self.base} on {self.task} ({self.metric})",
                 f"{'k':>4}  {self.metric:>10}"]
        lines += [f"{row['k']:>4}  {row['value']:>10.4g}" for row in self.rows]
        return "\n".join(lines)

    def save(self, path) -> Path:
        return files.write_json(path, self.to_dict())

    def plot(self, path=None):
        """The metric by k; returns the matplotlib Figure and writes a PNG to ``path``."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 3.8))
        ks = [row["k"] for row in self.rows]
        axes.plot(ks, [row["value"] for row in self.rows], marker="o")
        axes.set_xticks(ks)
        axes.set_xlabel(X_LABELS[self.kind].format(side=self.side))
        axes.set_ylabel(f"{self.task} {self.metric}")
        axes.set_title(f"{self.kind} ablation, {Path(self.base).name}")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        if path is not None:
            files.atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=120, format="png"))
        plt.close(figure)
        return figure


def ablate(kind: str, base, task: str, train, eval, out_dir, ks=None, *, side: str = "above",  # noqa: A002
           finetuned=None, progress: bool = True, **options) -> AblationResult:
    """Sweeps ``kind`` ("freeze", "revert", "reinit") over ``ks`` (default: 0..L, every
    layer count of ``base``), fine-tuning with ``options`` (see ``FinetuneOptions``) as
    ``ftlens.finetune`` does. "revert" reverts layers of ``finetuned`` (a finished run
    folder) or, when None, of a run it makes in ``out_dir/finetuned``."""
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
    result = AblationResult(kind, task, spec.metric, str(base), side if kind == "revert" else None)
    if kind == "revert":
        run = Path(finetuned) if finetuned is not None else finetune(
            base, task, train, eval, out / "finetuned", progress=progress, **options).out_dir
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
            done = finetune(base, task, train, eval, out / f"{kind}-{k}", progress=progress, **options,
                            **setting)
            metrics, folder = done.metrics, done.model_dir
        result.rows.append({"k": k, "value": metrics[f"eval_{spec.metric}"], "metrics": metrics,
                            "model_dir": str(folder)})
        result.save(out / "ablation.json")
    result.plot(out / "ablation.png")
    return result


def _finished_run(run: Path, task: str) -> dict:
    """The options of the finished fine-tuning run in ``run``."""
    if not (run / "metrics.json").is_file() or not (run / "options.json").is_file():
        raise FileNotFoundError(f"{run} holds no finished ftlens.finetune run (options.json and "
                                "metrics.json): pass the folder of a finished run as finetuned=")
    settings = json.loads((run / "options.json").read_text())
    if settings["task"] != task:
        raise ValueError(f"{run} was fine-tuned on task {settings['task']!r}, not {task!r}")
    return settings["options"]
