"""``ftlens.finetune``: fine-tune an encoder with a task head on the Hugging Face Trainer
(DDP under torchrun for free), into a run folder that is reused when finished and
resumed from its last checkpoint when interrupted.

A run folder holds ``options.json`` (written first), ``checkpoints/`` (the Trainer's),
``model/`` (encoder + head and tokenizer, ``save_pretrained``; ``ftlens.load_model``
reads its encoder) and ``metrics.json`` (written last: the evaluation history, the final
metrics, the seed and the package versions).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import _io
from ..data.pairs import PairData
from ..models import resolve
from .layers import freeze_bottom, reinit_top
from .optim import Adam
from .options import FinetuneOptions

TASKS = ("pair",)  # sentence-pair classification (NLI, RTE): [CLS] -> pooler -> dropout -> linear


@dataclass
class FinetuneResult:
    """A finished run: where its model is, its final metrics, the evaluation history and
    whether it was reused from an earlier call."""

    out_dir: Path
    metrics: dict
    history: list = field(default_factory=list)
    reused: bool = False

    @property
    def model_dir(self) -> Path:
        return self.out_dir / "model"


class _Pairs(torch.utils.data.Dataset):
    """Tokenized pairs (premise, hypothesis), truncated to max_length, with label ids."""

    def __init__(self, data: PairData, labels: tuple[str, ...], tokenizer, max_length: int):
        index = {name: i for i, name in enumerate(labels)}
        self.features = tokenizer([p.premise for p in data], [p.hypothesis for p in data], truncation=True,
                                  max_length=max_length)
        self.labels = [index[p.label] for p in data]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {**{k: v[i] for k, v in self.features.items()}, "labels": self.labels[i]}


def _check_data(task: str, train, evaluation) -> tuple[str, ...]:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {TASKS}")
    for role, data in (("train", train), ("eval", evaluation)):
        if not isinstance(data, PairData):
            raise TypeError(f"task 'pair' takes {role} data from ftlens.data.read_pairs (PairData), "
                            f"got {type(data).__name__}")
        if not len(data) or any(p.label is None for p in data):
            raise ValueError(f"the {role} pairs are empty or unlabeled; fine-tuning needs gold labels")
    seen = {p.label for p in train}
    unseen = sorted({p.label for p in evaluation} - seen)
    if unseen:
        count = sum(p.label in unseen for p in evaluation)
        raise ValueError(f"{count} eval pairs have labels the training pairs never have ({unseen}); the "
                         f"model could not predict them: drop them or add training pairs with them")
    return tuple(sorted(seen))


def _fingerprint(data: PairData) -> dict:
    """The pairs' count and a hash of their text and labels: a finished run is reused only
    for the same data."""
    digest = hashlib.sha256()
    for pair in data:
        digest.update(f"{pair.premise}\t{pair.hypothesis}\t{pair.label}\n".encode())
    return {"pairs": len(data), "sha256": digest.hexdigest()}


def _versions() -> dict:
    import transformers

    from .. import __version__

    return {"ftlens": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


def finetune(base, task: str, train, eval, out_dir, *, progress: bool = True,  # noqa: A002
             **options) -> FinetuneResult:
    """Fine-tunes ``base`` (hub name, folder or "minilm") on ``task`` ("pair": sentence
    pairs from ``ftlens.data.read_pairs``) and evaluates on ``eval`` after each epoch (or
    every ``eval_steps``). ``options``: see ``FinetuneOptions``. Returns the run's
    ``FinetuneResult``; a finished run in ``out_dir`` with the same settings is reused, an
    interrupted one resumes from its last checkpoint, one with other settings is refused."""
    import transformers

    opts = FinetuneOptions.from_kwargs(**options)
    labels = _check_data(task, train, eval)
    out = Path(out_dir)
    settings = {"base": str(base), "task": task, "labels": list(labels), "train": _fingerprint(train),
                "eval": _fingerprint(eval), "options": opts.to_dict()}
    if (out / "options.json").exists():
        recorded = json.loads((out / "options.json").read_text())
        if recorded != settings:
            changed = sorted(k for k in settings if recorded.get(k) != settings[k])
            raise ValueError(f"{out} holds a fine-tuning run with other settings ({changed} differ); pass "
                             "another out_dir, or delete that folder to start over")
        if (out / "metrics.json").exists():
            done = json.loads((out / "metrics.json").read_text())
            return FinetuneResult(out, done["final"], done["history"], reused=True)
    else:
        _io.check_writable(out)
        _io.write_json(out / "options.json", settings)

    path = resolve(base)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    transformers.set_seed(opts.seed)  # the new head's initial weights too: a rerun is the same run
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)})
    freeze_bottom(model, opts.freeze_bottom)
    reinit_top(model, opts.reinit_top, seed=opts.seed)
    train_set = _Pairs(train, labels, tokenizer, opts.max_length)
    eval_set = _Pairs(eval, labels, tokenizer, opts.max_length)
    trainer = transformers.Trainer(
        model=model, args=_arguments(opts, out, len(train_set), progress), train_dataset=train_set,
        eval_dataset=eval_set, data_collator=transformers.DataCollatorWithPadding(tokenizer),
        compute_metrics=_accuracy, optimizers=(_optimizer(model, opts), None))
    if not progress:
        trainer.remove_callback(transformers.PrinterCallback)
    checkpoint = transformers.trainer_utils.get_last_checkpoint(str(out / "checkpoints")) \
        if (out / "checkpoints").is_dir() else None
    trainer.train(resume_from_checkpoint=checkpoint)
    history = [entry for entry in trainer.state.log_history if any(k.startswith("eval_") for k in entry)]
    evaluated_last = history and history[-1].get("step") == trainer.state.global_step
    final = history[-1] if evaluated_last else trainer.evaluate()
    if trainer.is_world_process_zero():
        trainer.save_model(str(out / "model"))
        tokenizer.save_pretrained(str(out / "model"))
        _io.write_json(out / "metrics.json", {"final": final, "history": history, "seed": opts.seed,
                                              "resumed_from": checkpoint and Path(checkpoint).name,
                                              "versions": _versions()})
    return FinetuneResult(out, final, history if trainer.is_world_process_zero() else [], reused=False)


def _arguments(opts: FinetuneOptions, out: Path, n_train: int, progress: bool):
    import transformers

    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = math.ceil(n_train / (opts.batch_size * opts.gradient_accumulation * world))
    total = opts.max_steps or math.ceil(per_epoch * opts.epochs)
    evaluate = "steps" if opts.eval_steps else "epoch"
    return transformers.TrainingArguments(
        output_dir=str(out / "checkpoints"), learning_rate=opts.learning_rate, num_train_epochs=opts.epochs,
        max_steps=opts.max_steps or -1, per_device_train_batch_size=opts.batch_size,
        per_device_eval_batch_size=opts.batch_size, gradient_accumulation_steps=opts.gradient_accumulation,
        warmup_steps=int(opts.warmup_ratio * total), weight_decay=opts.weight_decay, seed=opts.seed,
        data_seed=opts.seed, eval_strategy=evaluate, eval_steps=opts.eval_steps,
        logging_strategy=evaluate, logging_steps=opts.eval_steps,
        save_strategy="steps" if opts.save_steps else "epoch",
        save_steps=opts.save_steps, save_total_limit=2, bf16=opts.precision == "bf16",
        fp16=opts.precision == "fp16", use_cpu=not torch.cuda.is_available(), report_to=[],
        disable_tqdm=not progress, dataloader_num_workers=0)


def _optimizer(model: torch.nn.Module, opts: FinetuneOptions) -> Adam:
    """Weight decay on every trainable weight matrix, none on biases and LayerNorms (as
    BERT and the Trainer's default do)."""
    decay, plain = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (plain if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": opts.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return Adam(groups, lr=opts.learning_rate, bias_correction=opts.adam_bias_correction)


def _accuracy(prediction) -> dict:
    logits, labels = prediction
    return {"accuracy": float(np.mean(np.argmax(logits, -1) == labels))}
