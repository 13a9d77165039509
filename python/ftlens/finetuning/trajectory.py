"""``Trajectory``: what a fine-tuning run's layers did while it trained, checkpoint by
checkpoint: each layer's similarity to the base model on a fixed tracking set and its
parameters' relative change from the base (``TrackLayers`` records it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .._util.jsonresult import JsonResult, listed, unlisted

BLOCKS = ("total", "attention", "feed_forward", "layer_norm")


@dataclass
class Trajectory(JsonResult):
    """Per recorded optimizer step (``steps`` [S]) and layer (``layers`` [L], index 0 the
    embeddings): ``values[measure]`` [S, L], the similarity of the model being trained to
    the base on the tracking set (1: unchanged), and ``change[block]`` [S, L],
    ||W_t - W_0|| / ||W_0|| over the layer's parameters ("total") and over its attention,
    feed-forward and LayerNorm parameters (NaN where a layer has none: the embeddings
    have no attention). ``every``: the steps between checkpoints; ``data``: the tracking
    set's fingerprint, ``n_inputs`` / ``n_rows`` its inputs and rows; ``rows``, ``rdm``:
    how it was measured."""

    layers: list[str]
    measures: list[str]
    every: int
    data: str
    n_inputs: int
    n_rows: int
    rows: str
    rdm: str
    steps: list[int] = field(default_factory=list)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    change: dict[str, np.ndarray] = field(default_factory=dict)

    def append(self, step: int, values: dict[str, np.ndarray], change: dict[str, np.ndarray]) -> None:
        """Adds one checkpoint (values {measure: [L]}, change {block: [L]})."""
        self.steps.append(int(step))
        for table, row in ((self.values, values), (self.change, change)):
            for key, v in row.items():
                old = table.get(key, np.empty((0, len(self.layers))))
                table[key] = np.vstack([old, np.asarray(v, dtype=np.float64)[None, :]])

    def until(self, step: int) -> Trajectory:
        """The checkpoints at or before ``step`` (a resumed run continues from there)."""
        keep = [i for i, s in enumerate(self.steps) if s <= step]
        return Trajectory(self.layers, self.measures, self.every, self.data, self.n_inputs, self.n_rows,
                          self.rows, self.rdm, [self.steps[i] for i in keep],
                          {k: v[keep] for k, v in self.values.items()},
                          {k: v[keep] for k, v in self.change.items()})

    def records(self) -> list[tuple[int, str, str, float]]:
        """(step, layer, measure or "change:<block>", value) for every recorded number."""
        out = []
        for table, prefix in ((self.values, ""), (self.change, "change:")):
            for key, v in table.items():
                out += [(step, layer, prefix + key, float(v[i, j])) for i, step in enumerate(self.steps)
                        for j, layer in enumerate(self.layers)]
        return out

    def to_dict(self) -> dict:
        out = asdict(self)
        out["values"] = {k: listed(v) for k, v in self.values.items()}
        out["change"] = {k: listed(v) for k, v in self.change.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Trajectory:
        data = dict(data)
        width = len(data["layers"])
        for key in ("values", "change"):
            data[key] = {k: unlisted(v).reshape(-1, width) for k, v in data.get(key, {}).items()}
        return cls(**data)
