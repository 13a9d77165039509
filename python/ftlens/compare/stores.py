"""``compare_stores``: two activation stores of the same rows (two models, or one model on
two runs), compared layer by layer with any measure, pairwise ones included: they need
several passes over every layer, which stores allow and streaming capture does not."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .._util.jsonresult import JsonResult, listed, unlisted
from ..activations import store
from ..similarity import registry


@dataclass
class StoreComparison(JsonResult):
    """Per-layer values of each measure asked for: ``values[label]`` [L] (layer l of one
    store vs layer l of the other) and ``details[label]`` (how each was computed)."""

    a: str
    b: str
    layers: list[int]
    n_rows: int
    measures: dict[str, dict]  # label -> {"measure": name, **options}
    values: dict[str, np.ndarray] = field(default_factory=dict)
    details: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["values"] = {label: listed(v) for label, v in self.values.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> StoreComparison:
        data = dict(data)
        data["values"] = {label: unlisted(v) for label, v in data["values"].items()}
        return cls(**data)


def _measures(measures) -> dict[str, dict]:
    """Names, or {label: options} where options may name the measure ("measure": "rsa")."""
    if isinstance(measures, str):
        measures = (measures,)
    if not isinstance(measures, dict):
        measures = {name: {} for name in measures}
    if not measures:
        raise ValueError(f"no measure asked for: choose from {tuple(registry.MEASURES)}")
    out = {}
    for label, options in measures.items():
        options = dict(options or {})
        name = options.pop("measure", label)
        registry.get(name)
        out[label] = {"measure": name, **options}
    return out


def compare_stores(
    a,
    b,
    measures=("cka",),
    *,
    layers=None,
    memory_budget: int | None = None,
    undefined: str = "raise",
    progress: bool = True,
) -> StoreComparison:
    """Compares two stores (paths or opened stores) layer by layer.

    measures: names ("cka", "rsa", ...) or {label: options}, e.g.
    ``{"rbf_cka": {"measure": "cka", "kernel": "rbf"}, "rsa": {"compare": "spearman"}}``.
    layers: the layer indices to compare (default: all). Both stores must hold the same
    rows (same count and, where recorded, the same (input, word) index)."""
    from ..similarity.functional import measure

    sa, sb = store.as_store(a, "a"), store.as_store(b, "b")
    if sa.n_rows != sb.n_rows:
        raise ValueError(
            f"the stores hold {sa.n_rows} and {sb.n_rows} rows; compare_stores needs the same rows "
            "(write both from the same data and row kind)"
        )
    if sa.n_layers != sb.n_layers:
        raise ValueError(
            f"the stores hold {sa.n_layers} and {sb.n_layers} layers; compare_stores pairs layer l "
            "with layer l"
        )
    index_a, index_b = getattr(sa, "rows", None), getattr(sb, "rows", None)
    if index_a is not None and index_b is not None and not np.array_equal(index_a, index_b):
        raise ValueError(
            "the stores hold different rows (their (input, word) indices differ): write both from "
            "the same data with the same rows and max_length"
        )
    layers = list(range(sa.n_layers)) if layers is None else [int(i) for i in layers]
    asked = _measures(measures)
    values = {label: np.full(len(layers), np.nan) for label in asked}
    details = {label: [] for label in asked}
    steps = [(i, layer) for i, layer in enumerate(layers)]
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="compare stores", unit="layer")
    for i, layer in steps:
        sa.check_intact([layer])
        sb.check_intact([layer])
        x, y = sa.layer(layer), sb.layer(layer)
        for label, spec in asked.items():
            options = {k: v for k, v in spec.items() if k != "measure"}
            out = measure(x, y, spec["measure"], undefined=undefined, memory_budget=memory_budget, **options)
            values[label][i] = out["value"]
            details[label].append({k: v for k, v in out.items() if k != "value"})
    name = lambda s: str(getattr(s, "path", type(s).__name__))  # noqa: E731
    return StoreComparison(name(sa), name(sb), layers, sa.n_rows, asked, values, details)
