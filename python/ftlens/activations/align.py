"""Inputs as word-segmented text, and the rows a capture selects from a tokenized batch.

Every input becomes one or two ``Segment``s: a text plus the character span of each word.
Plain strings are split at whitespace (so "state-of-the-art" and "don't" are one word
each); CoNLL-U sentences keep their gold words, joined by single spaces. Subword tokens
map to words through the fast tokenizer's character offsets, which works the same for
WordPiece, byte-level BPE and SentencePiece vocabularies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import PairData, QAExample, Sentence, SentencePair

ROWS = ("tokens", "words", "cls", "mean")
WORD_POOLS = ("first", "last", "mean")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Segment:
    """A text and the [start, end) character span of each of its words."""

    text: str
    spans: tuple[tuple[int, int], ...]

    @classmethod
    def from_text(cls, text: str) -> Segment:
        return cls(text, tuple(m.span() for m in _WORD.finditer(text)))

    @classmethod
    def from_words(cls, words: Sequence[str]) -> Segment:
        spans, at = [], 0
        for w in words:
            if not w or any(c.isspace() for c in w):
                raise ValueError(f"word {w!r} is empty or contains whitespace; pass non-empty words")
            spans.append((at, at + len(w)))
            at += len(w) + 1
        return cls(" ".join(words), tuple(spans))


@dataclass(frozen=True)
class Item:
    """One input: one or two segments, labels per word of the first segment (gold
    annotation) and a label of the whole input (e.g. an NLI class)."""

    segments: tuple[Segment, ...]
    word_labels: dict[str, list] = field(default_factory=dict)
    label: str | None = None


def _item(x) -> Item:
    if isinstance(x, Item):
        return x
    if isinstance(x, str):
        return Item((Segment.from_text(x),))
    if isinstance(x, Sentence):
        labels = {"upos": x.upos, "xpos": x.xpos, "deprel": x.deprels, "head": x.heads}
        return Item((Segment.from_words(x.words),), labels)
    if isinstance(x, SentencePair):
        texts = (x.premise,) if x.hypothesis is None else (x.premise, x.hypothesis)
        return Item(tuple(Segment.from_text(t) for t in texts), label=x.label)
    if isinstance(x, QAExample):
        return Item((Segment.from_text(x.question), Segment.from_text(x.context)))
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(s, str) for s in x):
        return Item((Segment.from_text(x[0]), Segment.from_text(x[1])))
    raise TypeError(
        f"cannot read an input of type {type(x).__name__}: expected a sentence (str), a sentence "
        "pair (str, str), or a reader's output (Sentence, SentencePair, QAExample)"
    )


def as_items(data) -> list[Item]:
    """Normalizes a list of sentences, sentence pairs or a reader's output."""
    if isinstance(data, (str, bytes)):
        raise TypeError("data must be a list of sentences, not one string: wrap it as [text]")
    items = [_item(x) for x in (data.pairs if isinstance(data, PairData) else data)]
    if not items:
        raise ValueError("data is empty: pass at least one sentence")
    if len({len(it.segments) for it in items}) > 1:
        raise ValueError("data mixes single sentences and sentence pairs; pass one kind at a time")
    return items


def token_words(offsets: np.ndarray, segment: Segment) -> np.ndarray:
    """Word index of each token (offsets [T, 2] into the segment's text), -1 where a token
    covers no word character (special tokens, a lone SentencePiece space)."""
    if not segment.spans:
        return np.full(len(offsets), -1, dtype=np.int64)
    starts = np.array([s for s, _ in segment.spans])
    ends = np.array([e for _, e in segment.spans])
    last_char = offsets[:, 1] - 1  # tokens never end in a space; they may start with one
    word = np.searchsorted(starts, last_char, side="right") - 1
    inside = (offsets[:, 1] > offsets[:, 0]) & (word >= 0)
    inside &= last_char < ends[np.clip(word, 0, None)]
    return np.where(inside, word, -1)


@dataclass
class Rows:
    """Rows selected from a batch of hidden states [B, T, d] flattened to [B*T, d].

    ``positions`` index the flat tokens; with ``groups`` set, row r is the mean of the
    positions whose group is r. ``item``/``unit`` say where each row came from (the input
    index in the batch, and the word or token index within it)."""

    positions: torch.Tensor
    groups: torch.Tensor | None
    item: np.ndarray
    unit: np.ndarray
    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # words lost, per input
    _index: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def words_dropped(self) -> int:
        """Words of the batch's inputs that truncation cut off (rows="words")."""
        return int(self.dropped.sum())

    def __len__(self) -> int:
        return len(self.item)

    def _index_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None,
                                                       torch.Tensor | None]:
        """(positions, groups, group sizes [rows, 1] float32) on ``device``, made once per
        device for all the layers of a batch."""
        if device not in self._index:
            positions = self.positions.to(device)
            if self.groups is None:
                self._index[device] = (positions, None, None)
            else:
                groups = self.groups.to(device)
                counts = torch.bincount(groups, minlength=len(self)).to(torch.float32)[:, None]
                self._index[device] = (positions, groups, counts)
        return self._index[device]

    def gather(self, states: Sequence[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
        """Per-layer hidden states [B, T, d] -> [L, rows, d] float32 (into ``out`` if given)."""
        if out is None:
            out = torch.empty(len(states), len(self), states[0].shape[-1], device=states[0].device)
        for layer, hidden in enumerate(states):
            self.gather_layer(hidden, out[layer])
        return out

    def gather_layer(self, hidden: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """One layer's hidden states [B, T, d] -> its rows, written into ``out`` [rows, d]
        float32 (on any device)."""
        flat = hidden.flatten(0, 1).float()
        positions, groups, counts = self._index_on(flat.device)
        if groups is None and flat.device == out.device:
            return torch.index_select(flat, 0, positions, out=out)
        picked = flat.index_select(0, positions)
        if groups is None:
            return out.copy_(picked)
        if flat.device == out.device:  # summed and divided in place
            return out.zero_().index_add_(0, groups, picked).div_(counts)
        summed = torch.zeros(len(self), flat.shape[1], device=flat.device)
        return out.copy_(summed.index_add_(0, groups, picked).div_(counts))


def select_rows(enc, items: Sequence[Item], rows: str, word_pool: str = "first",
                segment: int | None = None) -> Rows:
    """The rows of a padded batch encoding (with ``offset_mapping``) for these items."""
    width = enc["input_ids"].shape[1]
    mask = enc["attention_mask"].bool().numpy()
    offsets = enc["offset_mapping"].numpy()
    positions, groups, item_of, unit_of = [], [], [], []
    dropped = np.zeros(len(items), dtype=np.int64)
    for b, item in enumerate(items):
        seq = np.array([-1 if s is None else s for s in enc.sequence_ids(b)])
        tokens = np.flatnonzero(mask[b] if segment is None else mask[b] & (seq == segment))
        if rows == "tokens":
            positions.append(b * width + tokens)
            unit_of.append(tokens)
            item_of.append(np.full(len(tokens), b))
        elif rows == "cls":
            positions.append(np.array([b * width]))
            unit_of.append(np.zeros(1, dtype=np.int64))
            item_of.append(np.array([b]))
        elif rows == "mean":
            positions.append(b * width + tokens)
            groups.append(np.full(len(tokens), len(item_of)))
            unit_of.append(np.zeros(1, dtype=np.int64))
            item_of.append(np.array([b]))
        else:
            first_word = 0
            for s, seg in enumerate(item.segments):
                if segment is not None and s != segment:
                    first_word += len(seg.spans)
                    continue
                in_seg = np.flatnonzero(mask[b] & (seq == s))
                word = token_words(offsets[b, in_seg], seg)
                keep = word >= 0
                in_seg, word = in_seg[keep], word[keep]
                present = np.unique(word)
                dropped[b] += len(seg.spans) - len(present)
                if word_pool == "mean":
                    base = sum(len(u) for u in unit_of)
                    positions.append(b * width + in_seg)
                    groups.append(base + np.searchsorted(present, word))
                else:
                    pick = np.unique(word, return_index=True)[1] if word_pool == "first" else (
                        len(word) - 1 - np.unique(word[::-1], return_index=True)[1])
                    positions.append(b * width + in_seg[pick])
                unit_of.append(first_word + present)
                item_of.append(np.full(len(present), b))
                first_word += len(seg.spans)
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    grouped = rows == "mean" or (rows == "words" and word_pool == "mean")
    return Rows(
        positions=torch.from_numpy(cat(positions).astype(np.int64)),
        groups=torch.from_numpy(cat(groups).astype(np.int64)) if grouped else None,
        item=cat(item_of).astype(np.int64),
        unit=cat(unit_of).astype(np.int64),
        dropped=dropped,
    )


def check_row_options(rows: str, word_pool: str, segment: int | None, n_segments: int) -> None:
    if rows not in ROWS:
        raise ValueError(f"rows must be one of {ROWS}, got {rows!r}")
    if word_pool not in WORD_POOLS:
        raise ValueError(f"word_pool must be one of {WORD_POOLS}, got {word_pool!r}")
    if segment is not None and not 0 <= segment < n_segments:
        raise ValueError(
            f"segment={segment} but the inputs have {n_segments} segment(s); use 0 (first) "
            f"{'or 1 (second) ' if n_segments == 2 else ''}or None (all)"
        )
    if rows == "cls" and segment is not None:
        raise ValueError("rows='cls' takes the whole input; leave segment=None")
