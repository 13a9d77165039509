"""A fine-tuning that diverges stops with an error naming the step and the likely cause,
before anything is saved: the training loss is checked at every step (the Trainer itself
would only drop non-finite losses from its log), the weights before every checkpoint and
the evaluation loss before the model is saved as a finished run."""

from __future__ import annotations

import functools
import math

import torch


class FinetuneDiverged(RuntimeError):
    """The run produced a non-finite loss or weights; nothing was saved as a finished run."""


def _message(what: str, step: int, opts, out_dir) -> str:
    causes = [f"a learning rate too high for this model (learning_rate={opts.learning_rate:g}; BERT-size "
              "encoders usually take 1e-5..1e-4)"]
    if opts.precision == "fp16":
        causes.append("float16 overflow (precision='fp16': try 'bf16' or 'fp32')")
    if not opts.adam_bias_correction:
        causes.append("Adam without bias correction, whose first steps are large")
    return (f"fine-tuning diverged at step {step}: {what}. Likely cause: {'; or '.join(causes)}. Nothing was "
            f"saved as a finished run; rerun with other options into a new out_dir (or delete {out_dir})")


def check_weights(model: torch.nn.Module, step: int, opts, out_dir) -> None:
    bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise FinetuneDiverged(_message(f"{len(bad)} weight tensors hold NaN or Inf (first: {bad[0]})", step,
                                        opts, out_dir))


def check_metrics(metrics: dict, step: int, opts, out_dir) -> None:
    loss = metrics.get("eval_loss")
    if loss is not None and not math.isfinite(loss):
        raise FinetuneDiverged(_message(f"the evaluation loss is {loss}", step, opts, out_dir))


@functools.cache
def guarded_trainer():
    """The Trainer class, stopping at the first non-finite training loss and before saving a
    checkpoint of non-finite weights (set ``divergence_context`` to the run's options and
    folder; transformers is imported on first use)."""
    import transformers

    class GuardedTrainer(transformers.Trainer):
        divergence_context: tuple = ()

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            if self.divergence_context and not bool(torch.isfinite(loss).all()):
                step = self.state.global_step + 1
                raise FinetuneDiverged(_message(f"the training loss is {float(loss)}", step,
                                                *self.divergence_context))
            return loss

        def _save_checkpoint(self, model, trial):
            if self.divergence_context:
                check_weights(self.model, self.state.global_step, *self.divergence_context)
            return super()._save_checkpoint(model, trial)

    return GuardedTrainer
