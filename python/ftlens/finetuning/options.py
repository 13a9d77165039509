"""The options of a fine-tuning run, checked up front; a run folder records them and
refuses a rerun with others."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._util.validation import finite_number

PRECISIONS = ("fp32", "bf16", "fp16")
CLS_NORMS = ("layer", "batch", "l2")
DECODERS = ("mst", "greedy")
PUNCTUATION = ("upos", "form", "none")
POSITIVE_INTS = ("batch_size", "gradient_accumulation", "max_length", "doc_stride", "max_answer_length")


@dataclass(frozen=True)
class FinetuneOptions:
    """learning_rate (head_learning_rate for the new head's weights: None, the same),
    epochs (or max_steps, which wins), batch_size per device,
    warmup_ratio of the steps, weight_decay (not on biases and LayerNorms), seed,
    gradient_accumulation, max_length in tokens, eval_steps / save_steps (None: once per
    epoch), precision ("bf16" / "fp16" need a GPU), freeze_bottom / reinit_top layers,
    adam_bias_correction (False: BERT's original Adam).

    Task options: cls_norm (None, "layer", "batch", "l2") and isobn for the [CLS]
    classifiers ("sentence", "pair"); decode ("mst": the best tree with one root,
    Chu-Liu/Edmonds; "greedy": each word's best head) and punctuation (the words UAS and LAS
    leave out: "upos", UPOS PUNCT; "form", every character of the form Unicode punctuation,
    as the CoNLL-X eval.pl; "none", score every word as the CoNLL 2018 script does) for
    "parsing"; doc_stride (tokens that consecutive windows of a long context share) and
    max_answer_length (tokens) for "qa" (doc_stride at most half of max_length)."""

    learning_rate: float = 2e-5
    head_learning_rate: float | None = None
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
    cls_norm: str | None = None
    isobn: bool = False
    decode: str = "mst"
    punctuation: str = "upos"
    doc_stride: int = 64
    max_answer_length: int = 30

    def __post_init__(self) -> None:
        def given(*names: str) -> list[str]:  # the options set (None: optional and left unset)
            return [name for name in names if getattr(self, name) is not None]

        for name in ["learning_rate", *given("head_learning_rate")]:
            # Adam's steps are about the learning rate in size: beyond 1 the weights are noise
            finite_number(getattr(self, name), f"option {name}", low=0, high=1, low_open=True)
        finite_number(self.epochs, "option epochs", low=0, high=1e6, low_open=True)
        finite_number(self.warmup_ratio, "option warmup_ratio", low=0, high=1, high_open=True)
        finite_number(self.weight_decay, "option weight_decay", low=0, high=1)
        for name in [*POSITIVE_INTS, *given("max_steps", "eval_steps", "save_steps")]:
            finite_number(getattr(self, name), f"option {name}", low=1, integer=True)
        finite_number(self.seed, "option seed", low=0, high=2**32 - 1, integer=True)
        for name in ("freeze_bottom", "reinit_top"):
            finite_number(getattr(self, name), f"option {name}", low=0, integer=True)
        for name in ("adam_bias_correction", "isobn"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"option {name} must be true or false, got {getattr(self, name)!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.cls_norm is not None and self.cls_norm not in CLS_NORMS:
            raise ValueError(f"cls_norm must be None or one of {CLS_NORMS}, got {self.cls_norm!r}")
        if self.decode not in DECODERS:
            raise ValueError(f"decode must be one of {DECODERS}, got {self.decode!r}")
        if self.punctuation not in PUNCTUATION:
            raise ValueError(f"punctuation must be one of {PUNCTUATION}, got {self.punctuation!r}")

    @classmethod
    def from_kwargs(cls, **options) -> FinetuneOptions:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise TypeError(f"unknown fine-tuning option(s) {unknown}; the options are {names}")
        return cls(**options)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
