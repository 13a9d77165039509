"""The options of a fine-tuning run, checked up front; a run folder records them and
refuses a rerun with others."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._util.options import option
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

    learning_rate: float = option(2e-5, help="peak learning rate")
    head_learning_rate: float | None = option(None, help="of the new head's weights (None: learning_rate)")
    epochs: float = option(3.0, help="passes over the training data")
    max_steps: int | None = option(None, help="optimizer steps (wins over epochs)")
    batch_size: int = option(32, help="examples per device and step")
    warmup_ratio: float = option(0.1, help="share of the steps with a linear warm-up")
    weight_decay: float = option(0.01, help="not on biases and LayerNorms")
    seed: int = option(0, help="head initialization, data order, dropout")
    gradient_accumulation: int = option(1, help="batches per optimizer step")
    max_length: int = option(128, help="truncation length in tokens")
    eval_steps: int | None = option(None, help="evaluate every this many steps (None: each epoch)")
    save_steps: int | None = option(None, help="checkpoint every this many steps (None: each epoch)")
    precision: str = option("fp32", choices=PRECISIONS, help="bf16 and fp16 need a GPU")
    freeze_bottom: int = option(0, help="layers frozen from the bottom (embeddings included)")
    reinit_top: int = option(0, help="top layers re-initialized before training")
    adam_bias_correction: bool = option(True, help="False: BERT's original Adam")
    cls_norm: str | None = option(None, choices=(None, *CLS_NORMS), help="[CLS] normalization (classifiers)")
    isobn: bool = option(False, help="IsoBN on [CLS] (classifiers)")
    decode: str = option("mst", choices=DECODERS, help="parsing: the best tree, or each word's best head")
    punctuation: str = option("upos", choices=PUNCTUATION, help="parsing: the words UAS and LAS leave out")
    doc_stride: int = option(64, help="qa: tokens that consecutive windows share")
    max_answer_length: int = option(30, help="qa: longest answer in tokens")

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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
