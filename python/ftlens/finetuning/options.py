"""The options of a fine-tuning run, checked up front; a run folder records them and
refuses a rerun with others."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class FinetuneOptions:
    """learning_rate, epochs (or max_steps, which wins), batch_size per device,
    warmup_ratio of the steps, weight_decay (not on biases and LayerNorms), seed,
    gradient_accumulation, max_length in tokens, eval_steps / save_steps (None: once per
    epoch), precision ("bf16" / "fp16" need a GPU), freeze_bottom / reinit_top layers,
    adam_bias_correction (False: BERT's original Adam)."""

    learning_rate: float = 2e-5
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    gradient_accumulation: int = 1
    max_length: int = 128
    eval_steps: int | None = None
    save_steps: int | None = None
    precision: str = "fp32"
    freeze_bottom: int = 0
    reinit_top: int = 0
    adam_bias_correction: bool = True

    def __post_init__(self) -> None:
        positive = {"learning_rate": self.learning_rate, "epochs": self.epochs, "batch_size": self.batch_size,
                    "gradient_accumulation": self.gradient_accumulation, "max_length": self.max_length}
        positive |= {k: v for k, v in (("max_steps", self.max_steps), ("eval_steps", self.eval_steps),
                                       ("save_steps", self.save_steps)) if v is not None}
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"option {name} must be a positive number, got {value!r}")
        if not 0 <= self.warmup_ratio < 1 or self.weight_decay < 0:
            raise ValueError(f"warmup_ratio must lie in [0, 1) and weight_decay be >= 0, got "
                             f"{self.warmup_ratio!r} and {self.weight_decay!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @classmethod
    def from_kwargs(cls, **options) -> FinetuneOptions:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise TypeError(f"unknown fine-tuning option(s) {unknown}; the options are {names}")
        return cls(**options)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
