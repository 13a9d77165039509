"""``compare_models``: a base and a fine-tuned encoder, layer by layer, in one streaming pass."""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .._util import distributed as ranks
from .._util import fingerprint
from .._util.jsonresult import JsonResult, listed, unlisted
from .._util.options import split_overrides, with_overrides
from ..activations.align import as_items
from ..activations.capture import layer_names
from ..activations.models import as_model
from ..activations.options import CaptureOptions
from ..activations.overlap import consume_overlapped, cores_to_spare
from ..activations.stream import ActivationStream, core_device, group_chunks
from ..similarity import registry
from ..similarity.grouped import GroupedMoments
from . import display
from .options import CompareOptions

ARRAY_MAPS = ("intervals", "draws", "seed_values", "bias")  # measure -> array fields


@dataclass
class LayerComparison(JsonResult):
    """Per-layer similarity of two models. Each measure asked for is an array [L]
    (pairs="diagonal": layer l vs layer l) or [L, L] (pairs="all": base layers on rows),
    read as ``result.cka``, ``result.rsa``, ... (None when not asked for); index 0 is the
    embedding output. ``undefined`` lists the layers (pairs) left NaN per measure.

    With ``ci`` (compare_models(..., ci=0.95)), ``intervals[name]`` is [2, ...] (low and
    high bounds, the shape of the values) from a delete-a-group jackknife over
    ``ci_groups`` contiguous groups of inputs; ``result.interval(name)`` reads it.

    With ``draws``, ``draws[name]`` is [draws, L]: the measure on each bootstrap resample
    of the groups. A comparison combined over seeds (``ftlens.compare.across_seeds``) has
    ``seeds``, each seed's values in ``seed_values[name]`` [seeds, L], the mean over seeds
    as its values and Multi-Bootstrap intervals (``interval_method`` "multibootstrap",
    ``bias[name]``: the draws' mean minus the estimate)."""

    base: str
    finetuned: str
    layers: list[str]
    pairs: str
    rows: str
    n_rows: int
    n_inputs: int
    rdm: str = "correlation"
    truncated: int = 0
    words_dropped: int = 0
    values: dict[str, np.ndarray] = field(default_factory=dict)  # measure name -> array
    undefined: dict[str, list] = field(default_factory=dict)  # measure -> pairs left NaN
    ci: float | None = None  # the intervals' confidence level (None: no intervals)
    ci_groups: int | None = None
    intervals: dict[str, np.ndarray] = field(default_factory=dict)  # measure -> [2, ...] low, high
    isotropy: dict[str, dict] | None = None  # "base"/"finetuned" -> key -> [L] (isotropy=True)
    interval_method: str = "jackknife"  # or "multibootstrap" (over seeds and input groups)
    draws: dict[str, np.ndarray] = field(default_factory=dict)  # measure -> [draws, L] (draws=)
    draw_seed: int | None = None
    data: str = ""  # a fingerprint of the inputs: comparisons to combine must share them
    seeds: list[int] = field(default_factory=list)  # combined over these seeds (across_seeds)
    seed_values: dict[str, np.ndarray] = field(default_factory=dict)  # measure -> [seeds, L]
    bias: dict[str, np.ndarray] = field(default_factory=dict)  # measure -> [L] (multibootstrap)

    def interval(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) bounds of a measure's values; needs compare_models(..., ci=level)."""
        if name not in self.intervals:
            asked = "has none: pass ci=0.95" if self.ci is None else f"has {tuple(self.intervals)}"
            raise ValueError(f"no interval for {name!r}: this comparison {asked}")
        low, high = self.intervals[name]
        return low, high

    def table(self) -> str:
        """The values as a text table: layer by measure with intervals (pairs="diagonal"),
        or a layer x layer block per measure (pairs="all")."""
        return display.table(self)

    def plot(self, path=None, csv_path=None):
        """Each measure by layer on one shared 0-1 axis with its interval band (a 0-1
        heatmap per measure for pairs="all"); returns the matplotlib Figure, writes the PNG
        to ``path`` and the numbers behind it to ``csv_path`` when given."""
        return display.plot(self, path, csv_path)

    def csv(self) -> str:
        """The values as CSV: measure, base_layer, finetuned_layer, value, low, high."""
        return display.csv_text(self)

    def __getattr__(self, name: str):
        if name in registry.MEASURES:
            return self.__dict__.get("values", {}).get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def to_dict(self) -> dict:
        """Plain lists, one key per registered measure (None when not asked for); NaN
        (undefined pairs) becomes None, so the JSON stays standard."""
        out = asdict(self)
        values = out.pop("values")
        for key in ARRAY_MAPS:
            out[key] = {name: listed(array) for name, array in getattr(self, key).items()}
        if self.isotropy is not None:
            out["isotropy"] = {side: {k: listed(v) for k, v in diagnostics.items()}
                               for side, diagnostics in self.isotropy.items()}
        for name in registry.MEASURES:
            if name not in values:
                out[name] = None
                continue
            out[name] = listed(values[name])
        out["measures"] = list(values)  # the order they were asked for
        return out

    @classmethod
    def from_dict(cls, data: dict) -> LayerComparison:
        data = dict(data)
        values = {}
        for key in ARRAY_MAPS:
            data[key] = {name: unlisted(array) for name, array in (data.get(key) or {}).items()}
        if data.get("isotropy") is not None:
            data["isotropy"] = {side: {k: unlisted(v) for k, v in values.items()}
                                for side, values in data["isotropy"].items()}
        order = data.pop("measures", None) or list(registry.MEASURES)
        for name in [*order, *registry.MEASURES]:
            stored = data.pop(name, None)
            if stored is not None:
                values[name] = unlisted(stored)  # None -> NaN
        return cls(**data, values=values)


def _label(model_or_name) -> str:
    if isinstance(model_or_name, (str, os.PathLike)):
        return os.fspath(model_or_name)
    model = model_or_name[0]
    return getattr(model.config, "_name_or_path", "") or type(model).__name__


def compare_models(
    base,
    finetuned,
    data,
    measures=None,
    pairs: str | None = None,
    *,
    options: CompareOptions | None = None,
    capture: CaptureOptions | None = None,
    distributed: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> LayerComparison:
    """Streams the same inputs through two encoders and compares them layer by layer.

    Args:
        base, finetuned: a hub name, a folder, "minilm", or a (model, tokenizer) pair.
        data: sentences (list of str), sentence pairs (list of (str, str)), or a reader's
            output (CoNLL-U sentences, PairData, SQuAD examples).
        options: what to compute (``CompareOptions``: measures, pairs, rdm, ci, ci_groups,
            isotropy); ``measures`` and ``pairs`` may also come positionally.
        capture: which rows and how to run the models (``CaptureOptions``: rows, word_pool,
            segment, batch_size, max_batch_tokens, max_length, autocast).
        overrides: fields of either, e.g. ``ci=0.95, rows="words"``, each checked once.
        distributed: inside a torch.distributed process group (e.g. under torchrun), the
            ranks share out the inputs and merge their accumulators: every rank gets
            the result of all inputs. The ranks run the same chunks one process would, and
            the groups add each chunk's rows at once, so the result equals one process's to
            float64 rounding. Every rank must call it with the same data.

    With ``ci``, every value gets an interval from a delete-a-group jackknife over
    ``ci_groups`` contiguous groups of inputs (sentences, not tokens), in the same pass: it
    costs ci_groups accumulators of memory and, at the end, about G log2 G merges and G + 1
    evaluations of each measure (bench/RESULTS.md). ``isotropy=True`` adds
    ``ftlens.isotropy``'s diagnostics of every layer of both models on the same rows
    (``result.isotropy["base"]["mean_cosine"]``, ...), free.

    On CPU, when torch's intra-op threads leave a core free (``torch.set_num_threads``
    below the cores this process may use), each block of captured rows is accumulated on
    a worker thread while the next block's forward passes run; otherwise in line, as a
    worker would then only compete with the forwards. Two blocks with the worker, one in
    line ([layers, rows, hidden] float32 per model, rows of at most 8,192 tokens each), are
    in memory at once; their buffers are reused.

    Returns:
        LayerComparison with an array per measure asked for.
    """
    positional = {k: v for k, v in (("measures", measures), ("pairs", pairs)) if v is not None}
    compare_overrides, capture_overrides = split_overrides({**positional, **overrides}, CompareOptions,
                                                           CaptureOptions)
    o = with_overrides(CompareOptions, options, **compare_overrides)
    capture = with_overrides(CaptureOptions, capture, **capture_overrides)
    measures, pairs, rdm, ci, ci_groups = o.measures, o.pairs, o.rdm, o.ci, o.ci_groups
    items = as_items(data)  # bad data fails before any model loads
    grouped = ci is not None or o.draws is not None
    if grouped and ci_groups > len(items):
        raise ValueError(f"ci_groups must lie in [2, number of inputs = {len(items)}], got {ci_groups}: "
                         "the jackknife and the bootstrap resample groups of inputs")
    if o.draws is not None and pairs != "diagonal":
        raise ValueError("draws= keeps bootstrap resamples of layer l vs layer l: pass pairs='diagonal'")
    pair_x, pair_y = as_model(base, device), as_model(finetuned, device)
    # On CPU, with a core the forward passes leave free, each chunk is accumulated while the
    # next one is captured (a GPU runs both asynchronously already, on one CUDA stream whose
    # order a second thread could break). In line, one block's buffers serve every block.
    overlap = all(core_device(m).type == "cpu" for m, _ in (pair_x, pair_y)) and cores_to_spare()
    stream = ActivationStream([pair_x, pair_y], capture, ordered=False, progress=progress,
                              recycle=2 if overlap else 1)
    rows = capture.rows
    if stream.layers[0] != stream.layers[1]:
        raise ValueError(
            f"the models have {stream.layers[0]} and {stream.layers[1]} hidden states; "
            "compare_models needs two encoders of equal depth"
        )
    moments = GroupedMoments(ci_groups if grouped else 1, len(items), stream.layers[0], stream.dims[0],
                             stream.dims[1], pairs=pairs, rdms=(rdm,) if "rsa" in measures else ())
    # Groups flush at the end of every chunk, so that each sums the same float32 GEMMs however
    # the ranks share out the chunks (a group's rows are spread over the length-ordered plan).
    consume_overlapped(group_chunks(stream, items, distributed),
                       lambda chunk: moments.update(chunk.states[0], chunk.states[1], chunk.item).flush(),
                       overlap=overlap)
    truncated, words_dropped = stream.truncated, stream.words_dropped
    if distributed and ranks.active():
        moments.sync()
        truncated, words_dropped = ranks.total(truncated, words_dropped)
    result = LayerComparison(
        base=_label(base), finetuned=_label(finetuned),
        layers=layer_names(stream.layers[0]),
        pairs=pairs, rows=rows, n_rows=moments.n, n_inputs=len(items), rdm=rdm,
        truncated=truncated, words_dropped=words_dropped,
        ci=ci, ci_groups=ci_groups if grouped else None, draw_seed=o.draw_seed if o.draws else None,
        data=fingerprint.of_items(items),
    )
    if truncated:
        lost = f" ({words_dropped} words lost)" if rows == "words" else ""
        warnings.warn(
            f"{truncated} of {len(items)} inputs were longer than {stream.max_length} tokens "
            f"and were truncated{lost}; pass max_length= to change the limit",
            stacklevel=2,
        )
    if o.isotropy:
        merged = moments.merged()
        with warnings.catch_warnings():  # NaN where undefined, as for the measures below
            warnings.simplefilter("ignore")
            result.isotropy = {side: merged.isotropy(which, undefined="nan")
                               for side, which in (("base", "x"), ("finetuned", "y"))}
        del merged
    computed = moments.measures({name: {"rdm": rdm} for name in measures}, level=ci)
    for name in measures:
        values = computed[name]
        if ci is not None:
            values, low, high = values
            result.intervals[name] = np.stack([low, high])
        result.values[name] = values
        bad = np.argwhere(np.isnan(values))
        if len(bad):
            result.undefined[name] = bad.squeeze(-1).tolist() if pairs == "diagonal" else bad.tolist()
    if o.draws is not None:
        from ..similarity.bootstrap import draw, moment_draws

        unit_counts = draw(moments.n_groups, 1, o.draws, o.draw_seed).unit_counts
        result.draws = moment_draws(moments.groups, {name: {"rdm": rdm} for name in measures}, unit_counts)
    if result.undefined:
        where = "; ".join(f"{name} at {at}" for name, at in result.undefined.items())
        warnings.warn(
            f"undefined (NaN): {where} ({'layers' if pairs == 'diagonal' else 'layer pairs'}): a "
            "representation is constant there (e.g. rows='cls' at the embedding layer, where every "
            "input starts with the same token)",
            stacklevel=2,
        )
    return result
