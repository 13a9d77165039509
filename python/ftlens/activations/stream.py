"""Activation streams: inputs -> length-planned batches (``plan``) -> hooked forward passes
of one or more models -> aligned chunks [layers, rows, hidden].

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
from . import align, plan
from .capture import LayerCapture, n_hidden_states
from .options import CaptureOptions

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
WINDOW_BYTES = 1 << 30  # captured rows an ordered stream holds to plan many blocks together


@dataclass
class Chunk:
    """Rows of some inputs (in input order unless the stream says otherwise).

    states: one [L, rows, d] float32 tensor per model; item: the input index of each row;
    unit: the word (or token) index of each row within its input."""

    states: list[torch.Tensor]
    item: np.ndarray
    unit: np.ndarray
    n_inputs: int = 0  # the inputs whose rows it holds
    truncated: int = 0  # of them, those longer than max_length
    words_dropped: int = 0  # their words lost to truncation (rows="words")
    dropped: np.ndarray | None = None  # words lost per input of the planned span


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
        ordered: rows of a chunk in input order, one chunk per block of consecutive inputs
            (else in batch order; ``item``/``unit`` say where each row came from either
            way). Unordered, one length plan covers every input and costs no memory;
            ordered, the blocks of a window of ``window_bytes`` (default 1 GiB) of captured
            rows (at most one row per token, float32, every model) are planned together and
            held until the window is done.
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
                 recycle: int = 0, window_bytes: int | None = None, **overrides) -> None:
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
        token_bytes = 4 * sum(layers * dim for layers, dim in zip(self.layers, self.dims, strict=True))
        self.window_tokens = positive_int(window_bytes or WINDOW_BYTES, "window_bytes") // token_bytes
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

    def batches(self, lengths: np.ndarray, within_block: bool = False) -> list[np.ndarray]:
        """Input indices of each batch (``plan.length_batches``: shortest first, at most
        batch_size inputs, max_batch_tokens padded tokens and 5% padding; ``within_block``:
        also at most block_size inputs and max_block_tokens tokens, so a chunk holds whole
        batches)."""
        size, tokens = self.batch_size, self.max_batch_tokens
        if within_block:
            size, tokens = min(size, self.block_size), min(tokens, self.max_block_tokens)
        return plan.length_batches(self._tokens(lengths), size, tokens)

    def block_bounds(self, lengths: np.ndarray) -> list[tuple[int, int]]:
        """[start, stop) of each block for inputs of these lengths: consecutive inputs, at
        most block_size of them and max_block_tokens tokens (after truncation), at least
        one input each."""
        groups = plan.consecutive_groups(self._tokens(lengths), self.max_block_tokens, self.block_size)
        return [(g.start, g.stop) for g in groups]

    def blocks(self, items: Sequence[align.Item],
               lengths: np.ndarray | None = None) -> list[tuple[int, Sequence[align.Item]]]:
        """(first input index, inputs) of each block; every input is tokenized once here
        for its length (unless ``lengths`` gives them), which the block reuses."""
        lengths = self.lengths(items) if lengths is None else lengths
        return [(a, _Block(items[a:b], lengths[a:b])) for a, b in self.block_bounds(lengths)]

    def windows(self, bounds: Sequence[tuple[int, int]], lengths: np.ndarray) -> list[list[tuple[int, int]]]:
        """Blocks (``bounds``) grouped into windows of at most ``window_tokens`` tokens, each
        planned as one: consecutive blocks, at least one each."""
        tokens = [int(self._tokens(lengths[a:b]).sum()) for a, b in bounds]
        return [[bounds[i] for i in group] for group in plan.consecutive_groups(tokens, self.window_tokens)]

    def _tokens(self, lengths: np.ndarray) -> np.ndarray:
        """Tokens each input runs with, after truncation."""
        return np.minimum(lengths, self.max_length)

    def _lengths_of(self, items) -> np.ndarray:
        return items.lengths if isinstance(items, _Block) else self.lengths(items)

    def _encoded(self, items: Sequence[align.Item], batch: np.ndarray):
        """(input indices, encoding, rows) of one batch."""
        chosen = [items[i] for i in batch]
        enc = self._encode(self.tokenizers[0], chosen)
        return batch, enc, align.select_rows(enc, chosen, self.rows, self.word_pool, self.segment)

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

    def __call__(self, data, shard: tuple[int, int] = (0, 1)) -> Iterator[Chunk]:
        """Yields the chunks of all inputs.

        In order (``ordered``): one chunk per block (``block_bounds``), the blocks of a
        window (``windows``) planned together. Otherwise the consecutive batches of one plan
        over all inputs, at most block_size inputs and max_block_tokens tokens per chunk;
        ``shard=(rank, world)`` keeps every world-th chunk from the rank-th, so the ranks
        yield exactly the chunks one process would."""
        items = data if data and isinstance(data[0], align.Item) else align.as_items(data)
        align.check_row_options(self.rows, self.word_pool, self.segment, len(items[0].segments))
        lengths = self.lengths(items)
        rank, world = shard
        if self.ordered and world > 1:
            raise ValueError("an ordered stream runs every input: pass ordered=False to shard it")
        from tqdm.auto import tqdm

        if self.ordered:
            chunks = (chunk for window in self.windows(self.block_bounds(lengths), lengths)
                      for chunk in self.window(items, window, lengths))
            total = len(items)
        else:
            batches = self.batches(lengths, within_block=True)
            tokens = [int(self._tokens(lengths[b]).sum()) for b in batches]
            spans = plan.consecutive_groups(tokens, self.max_block_tokens, self.block_size,
                                            [len(b) for b in batches])[rank::world]
            chunks = (self._capture(items, lengths, [batches[i] for i in span], ordered=False)
                      for span in spans)
            total = sum(len(batches[i]) for span in spans for i in span)
        with tqdm(total=total, unit="input", desc="capture", disable=not self.progress) as bar:
            for chunk in chunks:
                yield chunk
                bar.update(chunk.n_inputs)

    def window(self, items: Sequence[align.Item], bounds: Sequence[tuple[int, int]],
               lengths: np.ndarray | None = None) -> list[Chunk]:
        """The chunks of the blocks [start, stop) of ``items`` (``lengths``: of all items),
        their inputs planned together; each chunk's rows in input order."""
        lengths = self.lengths(items) if lengths is None else lengths
        union = np.concatenate([np.arange(a, b) for a, b in bounds])
        inputs = _Block([items[i] for i in union], lengths[union])
        whole = self._capture(inputs, inputs.lengths, self.batches(inputs.lengths), ordered=True)
        sizes = np.array([b - a for a, b in bounds])
        starts = np.concatenate([[0], np.cumsum(sizes)])  # each block's inputs in the union
        cuts = np.searchsorted(whole.item, starts)
        out = []
        for k, size in enumerate(sizes):
            rows, inputs_k = slice(cuts[k], cuts[k + 1]), slice(starts[k], starts[k + 1])
            out.append(Chunk([s[:, rows] for s in whole.states], union[whole.item[rows]], whole.unit[rows],
                             n_inputs=int(size),
                             truncated=int((inputs.lengths[inputs_k] > self.max_length).sum()),
                             words_dropped=int(whole.dropped[inputs_k].sum())))
        return out

    def block(self, items: Sequence[align.Item], offset: int = 0) -> Chunk:
        """The chunk of one block of inputs (``offset``: the block's first input index),
        planned on its own."""
        lengths = self._lengths_of(items)
        chunk = self._capture(items, lengths, self.batches(lengths), self.ordered)
        chunk.item = chunk.item + offset
        return chunk

    def plan_block(self, items: Sequence[align.Item]) -> tuple[np.ndarray, np.ndarray]:
        """(item, unit) of each row a block yields in input order, from tokenization alone."""
        encoded = [self._encoded(items, batch) for batch in self.batches(self._lengths_of(items))]
        item, unit, _ = _row_index(encoded, ordered=True)
        return item, unit

    def _capture(self, items, lengths: np.ndarray, batches: list[np.ndarray], ordered: bool) -> Chunk:
        """Runs these batches (indices into ``items``) through every model: their rows in
        input order, or in batch order."""
        encoded = [self._encoded(items, batch) for batch in batches]
        item, unit, order = _row_index(encoded, ordered)
        out = self._outputs(len(item))
        where = None
        if order is not None:  # row j of the batches goes to place where[j]
            where = torch.empty(len(order), dtype=torch.int64)
            where[torch.from_numpy(order)] = torch.arange(len(order))
        dropped = np.zeros(len(items), dtype=np.int64)
        start = 0
        for batch, enc, rows in encoded:
            chosen = [items[i] for i in batch]
            place = slice(start, start + len(rows)) if where is None else where[start : start + len(rows)]
            for m in range(len(self.models)):
                own_enc, own_rows = self._rows_of(m, chosen, enc, rows)
                self._forward(m, own_enc, functools.partial(_gather_into, own_rows, out[m], place))
            dropped[batch] = rows.dropped
            start += len(rows)
        ran = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
        truncated = int((lengths[ran] > self.max_length).sum())
        self.truncated += truncated
        self.words_dropped += int(dropped.sum())
        return Chunk(out, item, unit, n_inputs=len(ran), truncated=truncated,
                     words_dropped=int(dropped.sum()), dropped=dropped)

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


def _row_index(encoded, ordered: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(item, unit) of the batches' rows in output order, and the permutation from batch
    order to input order (None in batch order)."""
    if not encoded:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    item = np.concatenate([batch[rows.item] for batch, _, rows in encoded])
    unit = np.concatenate([rows.unit for _, _, rows in encoded])
    if not ordered:
        return item, unit, None
    order = np.lexsort((unit, item))
    return item[order], unit[order], order


def _gather_into(rows: align.Rows, out: torch.Tensor, place, layer: int, hidden: torch.Tensor) -> None:
    """A forward pass's sink: one layer's rows into ``out[layer]`` at ``place`` (a slice, or
    the row index of each row)."""
    if isinstance(place, slice):
        rows.gather_layer(hidden, out[layer, place])
        return
    picked = rows.gather_layer(hidden, torch.empty(len(rows), out.shape[-1], device=out.device))
    out[layer].index_copy_(0, place.to(out.device), picked)


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


def group_chunks(stream: ActivationStream, items, distributed: bool) -> Iterator[Chunk]:
    """The chunks of this rank's inputs (``chunk.item``: indices into all of ``items``), in
    batch order. Under torch.distributed (when ``distributed``) the ranks share out the
    chunks of one plan: every chunk is the same whatever the number of ranks, so
    accumulators updated chunk by chunk (``GroupedMoments.flush`` after each) sum the same
    terms, only in another order."""
    if stream.ordered:
        raise ValueError("group_chunks shares out batches: it needs a stream with ordered=False")
    yield from stream(items, shard=ranks.rank_and_world() if distributed else (0, 1))
