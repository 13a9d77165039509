"""``ftlens.finetune``: fine-tune an encoder with a task head on the Hugging Face Trainer
(DDP under torchrun for free), into a run folder that is reused when finished and
resumed from its last checkpoint when interrupted.

A run resumes from its newest complete checkpoint (a partial one, left by a kill or a full
disk, is set aside); a diverging one stops before anything is saved (``divergence``).

A run folder holds ``options.json`` (written first), ``checkpoints/`` (the Trainer's),
``model/`` (the encoder as a Hugging Face folder that ``ftlens.load_model`` reads, the
head and the tokenizer; ``load_task_model`` reads it all), ``scores.json`` (the final
evaluation per eval example: its predictions and its share of each metric, what the
bootstrap over seeds and examples resamples) and ``metrics.json`` (written last: the
evaluation history, the final metrics, the seed, the checkpoint it resumed from, the wall
``seconds`` of the call that finished it and the package versions).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._util import files, fingerprint, runfolder
from .._util.options import with_overrides
from ..activations.models import model_source
from ..activations.stream import check_max_length, max_input_length
from .checkpoints import disk_full_error, resume_point
from .classify import PAIR, SENTENCE
from .divergence import check_metrics, check_weights, guarded_trainer
from .layers import freeze_bottom, reinit_top
from .logs import logged_progress
from .model import TaskModel, load_task_model
from .optim import Adam
from .options import FinetuneOptions
from .parse import PARSING
from .qa import QA
from .task import ExampleScores, FinetuneTask
from .tracking import TrackLayers, check_tracked, tracking_of

SAVE_TOTAL_LIMIT = 2  # checkpoints kept while a run trains
SCORES = "scores.json"
TASKS: dict[str, FinetuneTask] = {t.name: t for t in (SENTENCE, PAIR, PARSING, QA)}


def get_task(name: str) -> FinetuneTask:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are {sorted(TASKS)}")
    return TASKS[name]


@dataclass
class FinetuneResult:
    """A finished run: where its model is, its final metrics (``eval_<metric>``), the
    evaluation history and whether it was reused from an earlier call."""

    out_dir: Path
    metrics: dict
    history: list = field(default_factory=list)
    reused: bool = False

    @property
    def model_dir(self) -> Path:
        return self.out_dir / "model"

    @property
    def seed(self) -> int:
        return json.loads((self.out_dir / "options.json").read_text())["options"]["seed"]

    def scores(self) -> ExampleScores:
        """The final evaluation per eval example (``scores.json``)."""
        return ExampleScores.from_dict(json.loads((self.out_dir / SCORES).read_text()))


def _versions() -> dict:
    import transformers

    from .._version import __version__

    return {"ftlens": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


def finetune_run(base, task: str, train, eval, out_dir, *,  # noqa: A002
                 options: FinetuneOptions | None = None, progress: bool = True,
                 keep_checkpoints: bool = False, track=None, **overrides) -> FinetuneResult:
    """One run of ``ftlens.finetune`` (one seed, ``options.seed``) in ``out_dir``: see there."""
    spec = get_task(task)
    opts = with_overrides(FinetuneOptions, options, **overrides)
    settings = run_settings(base, task, train, eval, opts)
    tracking = tracking_of(track)
    out = files.check_writable(out_dir)
    lock = runfolder.one_worker(out, "fine-tuning", "pass another out_dir")
    with lock if _first_rank() else contextlib.nullcontext():
        return _finetune(base, spec, train, eval, out, opts, settings, progress, keep_checkpoints, tracking)


def run_settings(base, task: str, train, eval, opts: FinetuneOptions) -> dict:  # noqa: A002
    """What a run folder records of a run (``options.json``), the data checked first: two
    calls with equal settings make the same run."""
    head = get_task(task).check(train, eval, opts)
    return {"base": str(base), "task": task, "head": head, "train": fingerprint.of_examples(train),
            "eval": fingerprint.of_examples(eval), "options": opts.to_dict()}


def finished_with(run_dir, settings: dict) -> bool:
    """Whether ``run_dir`` holds a finished run made with exactly ``settings``."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file() or not (run_dir / "options.json").is_file():
        return False
    return _recorded(run_dir) == json.loads(json.dumps(settings))


def _recorded(out: Path) -> dict:
    recorded = json.loads((out / "options.json").read_text())
    # options added since the run was made held their defaults in it
    recorded["options"] = {**FinetuneOptions().to_dict(), **recorded.get("options", {})}
    return recorded


def _first_rank() -> bool:
    """Under torchrun every rank trains in out_dir: the first locks it and tidies it for all."""
    return os.environ.get("RANK", "0") == "0"


def _finetune(base, spec: FinetuneTask, train, eval, out: Path, opts: FinetuneOptions,  # noqa: A002
              settings: dict, progress: bool, keep_checkpoints: bool, tracking) -> FinetuneResult:
    import transformers

    head = settings["head"]
    if (out / "options.json").exists():
        runfolder.refuse_other(out, "a fine-tuning run", _recorded(out), settings, "pass another out_dir")
        if (out / "metrics.json").exists():
            done = json.loads((out / "metrics.json").read_text())
            # a diverged run finished by an earlier version is not a result
            check_metrics(done["final"], done["final"].get("step", "?"), opts, out)
            if not (out / SCORES).exists() and int(os.environ.get("WORLD_SIZE", "1")) == 1:
                _score_finished(out, spec, eval, opts)  # a run finished before they were kept
            if tracking is not None:
                check_tracked(out, *tracking)
            return FinetuneResult(out, done["final"], done["history"], reused=True)

    start = time.perf_counter()
    path = model_source(base)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    transformers.set_seed(opts.seed)  # the new head's initial weights too: a rerun is the same run
    encoder = transformers.AutoModel.from_pretrained(path)
    check_max_length(opts.max_length, tokenizer, max_input_length(encoder, tokenizer), spec.pairs)
    model = spec.model(encoder, head)
    freeze_bottom(model, opts.freeze_bottom)  # a model whose layers cannot be found fails here
    reinit_top(model, opts.reinit_top, seed=opts.seed)
    train_set = spec.dataset(train, tokenizer, opts, head, train=True)
    eval_set = spec.dataset(eval, tokenizer, opts, head, train=False)
    if not (out / "options.json").exists():
        files.write_json(out / "options.json", settings)
    trainer = _trainer(model, spec, opts, out / "checkpoints", tokenizer, eval_set, progress, train_set)
    trainer.divergence_context = (opts, out)
    if tracking is not None:
        items, track_options = tracking
        tracker = TrackLayers(path, tokenizer, items, out, track_options, distributed=True)
        trainer.add_callback(tracker.callback())
    checkpoint = resume_point(out / "checkpoints", set_aside=_first_rank())
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
        history = [entry for entry in trainer.state.log_history if any(k.startswith("eval_") for k in entry)]
        evaluated_last = history and history[-1].get("step") == trainer.state.global_step
        scorer = trainer.compute_metrics
        # (a run resumed after its last evaluation has not scored its examples here)
        final = history[-1] if evaluated_last and scorer.last is not None else trainer.evaluate()
        check_metrics(final, trainer.state.global_step, opts, out)
        check_weights(model, trainer.state.global_step, opts, out)
        if trainer.is_world_process_zero():
            model.save(out / "model", tokenizer)
            files.write_json(out / SCORES, scorer.last.to_dict())
            files.write_json(out / "metrics.json", {"final": final, "history": history, "seed": opts.seed,
                                                  "resumed_from": checkpoint and Path(checkpoint).name,
                                                  "seconds": round(time.perf_counter() - start, 1),
                                                  "versions": _versions()})
            if not keep_checkpoints:
                _delete_checkpoints(out / "checkpoints")
    except OSError as err:
        full = disk_full_error(err, out, model, kept=SAVE_TOTAL_LIMIT)
        if full is None:
            raise
        raise full from None
    return FinetuneResult(out, final, history if trainer.is_world_process_zero() else [], reused=False)


def _delete_checkpoints(folder: Path) -> None:
    """The Trainer's checkpoints of a finished run: model/ and metrics.json hold the result,
    and a finished run never resumes. Checkpoints set aside as incomplete stay, as their
    warning said."""
    for checkpoint in folder.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # when nothing else is left in it


def evaluate(model: TaskModel, task: str, data, tokenizer, *, options: FinetuneOptions | None = None,
             progress: bool = False, **overrides) -> dict:
    """The task metrics (``eval_<metric>``) of ``model`` on ``data``, without training
    (``options``: those of the run, for max_length, batch_size and the task options)."""
    opts = with_overrides(FinetuneOptions, options, **overrides)
    return evaluate_scores(model, get_task(task), data, tokenizer, opts, progress)[0]


def evaluate_scores(model: TaskModel, spec: FinetuneTask, data, tokenizer, opts: FinetuneOptions,
                    progress: bool) -> tuple[dict, ExampleScores]:
    """``eval_<metric>`` values and the per-example scores of ``model`` on ``data``."""
    spec.check(data, data, opts)  # the data's form; the labels are the model's own
    check_max_length(opts.max_length, tokenizer, max_input_length(model.encoder, tokenizer), spec.pairs)
    eval_set = spec.dataset(data, tokenizer, opts, model.head_options, train=False)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = _trainer(model, spec, opts, Path(scratch), tokenizer, eval_set, progress)
        return trainer.evaluate(), trainer.compute_metrics.last


def _score_finished(out: Path, spec: FinetuneTask, eval, opts: FinetuneOptions) -> None:  # noqa: A002
    """Writes ``scores.json`` of a finished run from its saved model."""
    import transformers

    model = load_task_model(out / "model")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out / "model")
    files.write_json(out / SCORES, evaluate_scores(model, spec, eval, tokenizer, opts, False)[1].to_dict())


def _trainer(model: TaskModel, spec: FinetuneTask, opts: FinetuneOptions, checkpoints: Path, tokenizer,
             eval_set, progress: bool, train_set=None):
    import transformers

    trainer = guarded_trainer()(
        model=model, args=_arguments(opts, spec, checkpoints, len(train_set or ()), progress),
        train_dataset=train_set, eval_dataset=eval_set, data_collator=spec.collator(tokenizer),
        compute_metrics=spec.metrics(eval_set, opts), optimizers=(_optimizer(model, opts), None))
    # the Trainer prints its logs as raw dicts (on stdout, or under the bar): they go to logging
    trainer.remove_callback(transformers.PrinterCallback)
    if progress:
        trainer.remove_callback(transformers.ProgressCallback)
        trainer.add_callback(logged_progress())
    return trainer


def _arguments(opts: FinetuneOptions, spec: FinetuneTask, checkpoints: Path, n_train: int, progress: bool):
    import transformers

    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = math.ceil(n_train / (opts.batch_size * opts.gradient_accumulation * world))
    total = opts.max_steps or math.ceil(per_epoch * opts.epochs)
    evaluate = "steps" if opts.eval_steps else "epoch"
    return transformers.TrainingArguments(
        output_dir=str(checkpoints), learning_rate=opts.learning_rate, num_train_epochs=opts.epochs,
        max_steps=opts.max_steps or -1, per_device_train_batch_size=opts.batch_size,
        per_device_eval_batch_size=opts.batch_size, gradient_accumulation_steps=opts.gradient_accumulation,
        warmup_steps=int(opts.warmup_ratio * total), weight_decay=opts.weight_decay, seed=opts.seed,
        data_seed=opts.seed, eval_strategy=evaluate, eval_steps=opts.eval_steps,
        logging_strategy=evaluate, logging_steps=opts.eval_steps,
        save_strategy="steps" if opts.save_steps else "epoch", label_names=list(spec.label_names),
        save_steps=opts.save_steps, save_total_limit=SAVE_TOTAL_LIMIT, bf16=opts.precision == "bf16",
        fp16=opts.precision == "fp16", use_cpu=not torch.cuda.is_available(), report_to=[],
        disable_tqdm=not progress, dataloader_num_workers=0, remove_unused_columns=False)


def _optimizer(model: torch.nn.Module, opts: FinetuneOptions) -> Adam:
    """Weight decay on every trainable weight matrix, none on biases and LayerNorms (as
    BERT and the Trainer's default do); the head at head_learning_rate when given."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            in_head = not name.startswith("encoder.")
            decays = param.ndim >= 2 and "LayerNorm" not in name
            groups.setdefault((in_head, decays), []).append(param)
    head_rate = opts.head_learning_rate or opts.learning_rate
    return Adam([{"params": params, "weight_decay": opts.weight_decay if decays else 0.0,
                  "lr": head_rate if in_head else opts.learning_rate}
                 for (in_head, decays), params in groups.items()],
                lr=opts.learning_rate, bias_correction=opts.adam_bias_correction)
