"""Activation streams: inputs -> length-sorted batches -> hooked forward passes of one or
more models -> aligned chunks [layers, rows, hidden], one per block of inputs.

Several models (a base and a fine-tuned one) see the same batches, so their chunks line
up row for row and feed ``LayerMoments`` directly: no activation is ever stored.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._core import build_info
from .._util import distributed as ranks
from .._util.options import with_overrides
from .._util.validation import positive_int
from . import align
from .capture import LayerCapture, n_hidden_states
from .options import CaptureOptions

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Chunk:
    """Rows of one block of inputs (in input order unless the stream says otherwise).

    states: one [L, rows, d] float32 tensor per model; item: the input index of each row;
    unit: the word (or token) index of each row within its input."""

    states: list[torch.Tensor]
    item: np.ndarray
    unit: np.ndarray


def same_tokenizer(a, b) -> bool:
    """True when two fast tokenizers split every text identically (their truncation and
    padding state, which a saved copy of a tokenizer need not keep, aside)."""
    if a is b:
        return True
    try:
        return _splitting(a) == _splitting(b)
    except AttributeError:
        return False


def _splitting(tokenizer) -> dict:
    described = json.loads(tokenizer.backend_tokenizer.to_str())
    return {k: v for k, v in described.items() if k not in ("truncation", "padding")}


def max_input_length(model, tokenizer) -> int:
    """Longest input the model takes (tokenizer limit, capped by the position table)."""
    limit = getattr(tokenizer, "model_max_length", None) or 10**9
    positions = getattr(model.config, "max_position_embeddings", None)
    padding_idx = getattr(getattr(model, "embeddings", None), "padding_idx", None)
    if positions and padding_idx is not None:
        positions -= padding_idx + 1  # RoBERTa-style position ids start after the pad index
    return int(min(limit, positions or limit, 10**6))


def check_max_length(max_length: int, tokenizer, longest: int, pairs: bool) -> int:
    """``max_length`` if it leaves room for the special tokens and at least one token of each
    segment, and the model (``longest`` tokens) takes it; else a ValueError with the reason
    (a tokenizer asked for less than its special tokens would silently not truncate)."""
    special = tokenizer.num_special_tokens_to_add(pair=pairs)
    least = special + (2 if pairs else 1)
    if max_length < least:
        raise ValueError(
            f"max_length={max_length} leaves no room for text: this tokenizer adds {special} special tokens "
            f"to {'a sentence pair' if pairs else 'an input'}, so max_length must be at least {least}"
        )
    if max_length > longest:
        raise ValueError(f"max_length={max_length} exceeds the {longest} tokens this model takes "
                         "(its position table); pass at most that")
    return max_length


def core_device(model: torch.nn.Module) -> torch.device:
    """Where the accumulators can take this model's activations: its own device, or the
    CPU when the C++ core was built without CUDA."""
    device = next(model.parameters()).device
    return device if device.type == "cpu" or build_info()["cuda"] else torch.device("cpu")


class ActivationStream:
    """Streams hooked activations of one or more models over the same inputs.

    Args:
        models: (model, tokenizer) pairs; all see the first one's batches. Models with a
            different tokenizer are tokenized on their own (then rows="tokens" is refused,
            since their tokens do not line up).
        capture: CaptureOptions (rows, word_pool, segment, batch sizes, max_length,
            autocast); keyword arguments override its fields, e.g. rows="words".
        block_size, max_block_tokens: a yielded chunk holds at most block_size inputs and
            (unless one input is longer) max_block_tokens tokens, which bounds its memory:
            [layers, rows, hidden] float32 per model.
        ordered: rows of a chunk in input order (else in batch order, one copy less;
            ``item``/``unit`` say where each row came from either way).
        recycle: keep this many blocks' CPU states and write each new block over the
            oldest, sparing the page faults of fresh tensors. With ordered=False a chunk's
            states are overwritten ``recycle`` chunks later, so use it only when each chunk
            is done with by then (0: fresh tensors for every block; GPU states are always
            fresh, the caching allocator reuses their memory).
    Truncated inputs are counted in ``self.truncated``, their lost words in
    ``self.words_dropped``.
    """

    def __init__(self, models: Sequence, capture: CaptureOptions | None = None, *, block_size: int = 256,
                 max_block_tokens: int = 8192, ordered: bool = True, progress: bool = True,
                 recycle: int = 0, **overrides) -> None:
        if not models:
            raise ValueError("pass at least one (model, tokenizer) pair")
        self.options = options = with_overrides(CaptureOptions, capture, **overrides)
        self.models = [m for m, _ in models]
        self.tokenizers = [t for _, t in models]
        self.shared = [same_tokenizer(self.tokenizers[0], t) for t in self.tokenizers]
        if options.rows == "tokens" and not all(self.shared):
            raise ValueError(
                "rows='tokens' needs the models to share a tokenizer (their subwords must line "
                "up); use rows='words', 'cls' or 'mean' to compare models with different tokenizers"
            )
        for m in self.models:
            if options.autocast == "fp16" and next(m.parameters()).device.type == "cpu":
                raise ValueError("autocast='fp16' needs a GPU; on CPU use autocast='bf16' or None")
        self.rows, self.word_pool, self.segment = options.rows, options.word_pool, options.segment
        self.batch_size, self.max_batch_tokens = options.batch_size, options.max_batch_tokens
        self.block_size = positive_int(block_size, "block_size (or the store's shard_size)")
        self.max_block_tokens = positive_int(max_block_tokens,
                                             "max_block_tokens (or the store's max_shard_tokens)")
        longest = min(max_input_length(m, t) for m, t in models)
        self.max_length = longest if options.max_length is None else min(
            check_max_length(options.max_length, t, longest, pairs=False) for t in self.tokenizers)
        self.autocast = options.autocast
        self.ordered = ordered
        if not isinstance(recycle, int) or recycle < 0:
            raise ValueError(f"recycle is how many blocks' states to cycle through (0: none), got {recycle}")
        self._recycled = [[None] * len(self.models) for _ in range(recycle)]
        self._turn = 0
        self.progress = progress
        self.layers = [n_hidden_states(m) for m in self.models]
        self.dims = [m.config.hidden_size for m in self.models]
        self._accepts = [set(inspect.signature(m.forward).parameters) for m in self.models]
        self.truncated = 0
        self.words_dropped = 0

    # -- planning ------------------------------------------------------------------------
    def lengths(self, items: Sequence[align.Item]) -> np.ndarray:
        """Token count of each input before truncation (special tokens included)."""
        if items and len(items[0].segments) == 2:
            for tokenizer in self.tokenizers:
                check_max_length(self.max_length, tokenizer, self.max_length, pairs=True)
        out = []
        for start in range(0, len(items), self.block_size):  # bounds the encodings held at once
            enc = self.tokenizers[0](*_texts(items[start : start + self.block_size]), truncation=False,
                                     return_attention_mask=False, verbose=False)
            out += [len(ids) for ids in enc["input_ids"]]
        return np.array(out, dtype=np.int64)

    def batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Input indices of each batch: sorted by length, at most batch_size inputs and
        max_batch_tokens padded tokens (a longer single input goes alone)."""
        order = np.argsort(np.minimum(lengths, self.max_length), kind="stable")
        out, current = [], []
        for i in order:
            width = min(int(lengths[i]), self.max_length)
            full = len(current) >= self.batch_size or width * (len(current) + 1) > self.max_batch_tokens
            if current and full:
                out.append(np.array(current))
                current = []
            current.append(i)
        if current:
            out.append(np.array(current))
        return out

    # -- running -------------------------------------------------------------------------
    def _encode(self, tokenizer, items: Sequence[align.Item]):
        return tokenizer(*_texts(items), padding=True, truncation=True, max_length=self.max_length,
                         return_offsets_mapping=True, return_tensors="pt")

    @torch.inference_mode()
    def _forward(self, index: int, enc, sink: Callable[[int, torch.Tensor], None]) -> None:
        """Runs model ``index`` on an encoding, handing each hidden state to ``sink(layer,
        state)`` as it is produced (so no layer's output outlives the next block)."""
        model = self.models[index]
        device = next(model.parameters()).device
        accepted = self._accepts[index] - {"offset_mapping"}
        inputs = {k: v.to(device) for k, v in enc.items() if k in accepted}
        cast = (torch.autocast(device.type, dtype=AUTOCAST_DTYPES[self.autocast]) if self.autocast
                else contextlib.nullcontext())
        with LayerCapture(model, sink) as capture, cast:
            model(**inputs)
        capture.take()

    def _plan(self, items: Sequence[align.Item]):
        """[(input indices, encoding, rows)] of each batch of a block, tokenized once."""
        plan = []
        for batch in self.batches(self._lengths_of(items)):
            chosen = [items[i] for i in batch]
            enc = self._encode(self.tokenizers[0], chosen)
            plan.append((batch, enc, align.select_rows(enc, chosen, self.rows, self.word_pool, self.segment)))
        return plan

    def _lengths_of(self, items) -> np.ndarray:
        return items.lengths if isinstance(items, _Block) else self.lengths(items)

    def _rows_of(self, index: int, chosen, enc, rows: align.Rows):
        """Encoding and rows of model ``index`` (its own when its tokenizer differs)."""
        if self.shared[index]:
            return enc, rows
        own_enc = self._encode(self.tokenizers[index], chosen)
        own = align.select_rows(own_enc, chosen, self.rows, self.word_pool, self.segment)
        if len(own) != len(rows) or not np.array_equal(own.unit, rows.unit):
            raise ValueError(
                "the models' tokenizers keep different words of a truncated input; raise "
                "max_length or shorten the inputs"
            )
        return own_enc, own

    def block_bounds(self, lengths: np.ndarray) -> list[tuple[int, int]]:
        """[start, stop) of each block for inputs of these lengths: consecutive inputs, at
        most block_size of them and max_block_tokens tokens (after truncation), at least
        one input each."""
        bounds = []
        for start in range(0, len(lengths), self.block_size):
            window = np.minimum(lengths[start : start + self.block_size], self.max_length)
            cumulative, begin = np.cumsum(window), 0
            while begin < len(window):
                used = cumulative[begin - 1] if begin else 0
                stop = max(begin + 1, int(np.searchsorted(cumulative, used + self.max_block_tokens, "right")))
                bounds.append((start + begin, start + stop))
                begin = stop
        return bounds

    def blocks(self, items: Sequence[align.Item]) -> list[tuple[int, Sequence[align.Item]]]:
        """(first input index, inputs) of each block; every input is tokenized once here
        for its length, which the block reuses."""
        lengths = self.lengths(items)
        return [(a, _Block(items[a:b], lengths[a:b])) for a, b in self.block_bounds(lengths)]

    def __call__(self, data) -> Iterator[Chunk]:
        """Yields one Chunk per block of inputs (see block_bounds)."""
        items = data if data and isinstance(data[0], align.Item) else align.as_items(data)
        align.check_row_options(self.rows, self.word_pool, self.segment, len(items[0].segments))
        from tqdm.auto import tqdm

        with tqdm(total=len(items), unit="input", desc="capture", disable=not self.progress) as bar:
            for start, block in self.blocks(items):
                yield self.block(block, start)
                bar.update(len(block))

    def plan_block(self, items: Sequence[align.Item]) -> tuple[np.ndarray, np.ndarray]:
        """(item, unit) of each row a block will yield, from tokenization alone."""
        item, unit, _ = self._row_index(self._plan(items))
        return item, unit

    def _outputs(self, n_rows: int) -> list[torch.Tensor]:
        """The [L, n_rows, d] float32 states to fill, one per model: fresh, or the oldest
        recycled ones (grown when too small) for CPU models."""
        shapes = [(layers, n_rows, dim) for layers, dim in zip(self.layers, self.dims, strict=True)]
        devices = [core_device(model) for model in self.models]
        if not self._recycled:
            return [torch.empty(shape, device=device) for shape, device in zip(shapes, devices, strict=True)]
        held = self._recycled[self._turn % len(self._recycled)]
        self._turn += 1
        out = []
        for m, (shape, device) in enumerate(zip(shapes, devices, strict=True)):
            if device.type != "cpu":
                out.append(torch.empty(shape, device=device))
                continue
            size = math.prod(shape)
            if held[m] is None or held[m].numel() < size:
                held[m] = torch.empty(size)
            out.append(held[m][:size].view(shape))
        return out

    def _row_index(self, plan) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(item, unit) of the rows in output order, and the permutation from batch order
        to input order (None when the stream keeps batch order)."""
        item = np.concatenate([batch[rows.item] for batch, _, rows in plan])
        unit = np.concatenate([rows.unit for _, _, rows in plan])
        if not self.ordered:
            return item, unit, None
        order = np.lexsort((unit, item))
        return item[order], unit[order], order

    def block(self, items: Sequence[align.Item], offset: int = 0) -> Chunk:
        """The chunk of one block of inputs (``offset``: the block's first input index)."""
        lengths = self._lengths_of(items)
        self.truncated += int((lengths > self.max_length).sum())
        plan = self._plan(_Block(items, lengths))
        n_rows = sum(len(rows) for _, _, rows in plan)
        out = self._outputs(n_rows)
        start = 0
        for batch, enc, rows in plan:
            chosen = [items[i] for i in batch]
            for m in range(len(self.models)):
                own_enc, own_rows = self._rows_of(m, chosen, enc, rows)
                into = out[m][:, start : start + len(rows)]
                self._forward(m, own_enc, functools.partial(_gather_into, own_rows, into))
            self.words_dropped += rows.words_dropped
            start += len(rows)
        item, unit, order = self._row_index(plan)
        if order is not None:
            index = torch.from_numpy(order)
            out = [o.index_select(1, index.to(o.device)) for o in out]
        return Chunk(out, item + offset, unit)


def _gather_into(rows: align.Rows, out: torch.Tensor, layer: int, hidden: torch.Tensor) -> None:
    """A forward pass's sink: one layer's rows into ``out[layer]``."""
    rows.gather_layer(hidden, out[layer])


class _Block(list):
    """A block's inputs with their token counts, so that they are tokenized for length once."""

    def __init__(self, items: Sequence[align.Item], lengths: np.ndarray) -> None:
        super().__init__(items)
        self.lengths = lengths


def _texts(items: Sequence[align.Item]) -> tuple[list[str], list[str] | None]:
    """First segments, and second segments for sentence pairs (None otherwise)."""
    first = [it.segments[0].text for it in items]
    second = [it.segments[1].text for it in items] if len(items[0].segments) == 2 else None
    return first, second


def group_chunks(stream: ActivationStream, items, n_groups: int, distributed: bool) -> Iterator[Chunk]:
    """The chunks of this rank's inputs (``chunk.item``: indices into all of ``items``).
    With several groups, each group's inputs stream on their own (no block spans two
    groups) and each rank takes whole groups (under torch.distributed when
    ``distributed``), so a group's accumulator sees the same chunks whatever the number of
    ranks."""
    if n_groups == 1:
        yield from stream(items)
        return
    from tqdm.auto import tqdm

    rank, world = ranks.rank_and_world() if distributed else (0, 1)
    # group g holds the inputs [first[g], first[g + 1]) (GroupedMoments.group_of)
    first = [(g * len(items) + n_groups - 1) // n_groups for g in range(n_groups + 1)]
    mine = [g for g in range(n_groups) if g * world // n_groups == rank]
    shown, stream.progress = stream.progress, False
    try:
        with tqdm(total=sum(first[g + 1] - first[g] for g in mine), unit="input", desc="capture",
                  disable=not shown) as bar:
            for g in mine:
                for chunk in stream(items[first[g]:first[g + 1]]):
                    chunk.item = chunk.item + first[g]
                    yield chunk
                bar.update(first[g + 1] - first[g])
    finally:
        stream.progress = shown
