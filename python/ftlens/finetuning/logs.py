"""The Trainer's progress: its bars as they are, its logs as lines of the
``ftlens.finetuning`` logger ("step 38, epoch 2: loss 0.412, eval accuracy 0.906") instead
of the raw dicts it prints."""

from __future__ import annotations

import functools
import logging

LOG = logging.getLogger("ftlens.finetuning")
LEFT_OUT = ("total_flos", "epoch", "step")


def log_line(step: int, logs: dict) -> str:
    """One readable line of a Trainer log entry."""
    epoch = logs.get("epoch")
    shown = ", ".join(
        f"{name.replace('_', ' ')} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
        for name, value in logs.items()
        if name not in LEFT_OUT and "per_second" not in name
    )
    where = f"step {step}" + (f", epoch {epoch:.3g}" if isinstance(epoch, (int, float)) else "")
    return f"{where}: {shown}"


@functools.cache
def logged_progress():
    """The Trainer's ProgressCallback with its logs sent to the ``ftlens.finetuning``
    logger (a class made on first use: transformers loads only when a run starts)."""
    from transformers.trainer_callback import ProgressCallback

    class LoggedProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                LOG.info(log_line(state.global_step, logs))

    return LoggedProgress
