"""``CaptureOptions``: which rows to take from an encoder's layers and how to run it, shared
by ``ActivationStream``, ``compare_models`` and ``store.write``."""

from __future__ import annotations

from dataclasses import dataclass

from .._util.options import option
from .._util.validation import positive_int
from .align import ROWS, WORD_POOLS

AUTOCAST = ("bf16", "fp16")


@dataclass(frozen=True)
class CaptureOptions:
    """Args:
        rows: "tokens" (every non-padding subword), "words" (pooled per word), "cls" (the
            first token) or "mean" (mean over the input's tokens).
        word_pool: "first", "last" or "mean" subword of each word (rows="words").
        segment: for sentence pairs, 0 or 1 keeps only that segment; None keeps both.
        batch_size, max_batch_tokens: batch limits (inputs are planned by length, so batches
            carry little padding).
        max_length: truncation length in tokens (default: the model's limit).
        autocast: "bf16" or "fp16" runs the forward passes under autocast (GPU; CPU takes
            "bf16" only); activations come out float32 either way.
    """

    rows: str = option("tokens", choices=ROWS, help="the rows taken from each layer")
    word_pool: str = option("first", choices=WORD_POOLS, help="the subword of each word (rows=words)")
    segment: int | None = option(None, choices=(None, 0, 1), help="of sentence pairs, only this segment")
    batch_size: int = option(64, help="inputs per forward pass")
    max_batch_tokens: int = option(8192, help="tokens per forward pass")
    max_length: int | None = option(None, help="truncation length in tokens (default: the model's limit)")
    autocast: str | None = option(None, choices=(None, *AUTOCAST), help="forward passes under autocast")

    def __post_init__(self) -> None:
        if self.rows not in ROWS:
            raise ValueError(f"rows must be one of {ROWS}, got {self.rows!r}")
        if self.word_pool not in WORD_POOLS:
            raise ValueError(f"word_pool must be one of {WORD_POOLS}, got {self.word_pool!r}")
        if self.segment not in (None, 0, 1):
            raise ValueError(f"segment must be None, 0 or 1, got {self.segment!r}")
        if self.autocast is not None and self.autocast not in AUTOCAST:
            raise ValueError(f"autocast must be None, 'bf16' or 'fp16', got {self.autocast!r}")
        positive_int(self.batch_size, "batch_size")
        positive_int(self.max_batch_tokens, "max_batch_tokens")
        if self.max_length is not None:
            positive_int(self.max_length, "max_length")
