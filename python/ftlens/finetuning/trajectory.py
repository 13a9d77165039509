"""``Trajectory``: what a fine-tuning run's layers did while it trained, checkpoint by
checkpoint: each layer's similarity to the base model on a fixed tracking set and its
parameters' relative change from the base (``TrackLayers`` records it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .._util.jsonresult import JsonResult, listed, unlisted
from ..activations.capture import short_layer_names

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

    def plot(self, path=None, measure: str | None = None):
        """The layer x step heatmap of ``measure`` (default: the first) and each layer's
        parameter change by step (``plot_trajectories``); writes a PNG to ``path``."""
        return plot_trajectories([self], path, measure=measure)

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


def stacked(trajectories: list[Trajectory]) -> tuple[list[int], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Several runs' trajectories (seeds) on the steps every one recorded: (steps, values
    {measure: [runs, steps, layers]}, change {block: [runs, steps, layers]})."""
    if not trajectories:
        raise ValueError("no trajectory given")
    steps = sorted(set.intersection(*(set(t.steps) for t in trajectories)))
    rows = [[t.steps.index(s) for s in steps] for t in trajectories]

    def table(name: str) -> dict[str, np.ndarray]:
        first = getattr(trajectories[0], name)
        return {key: np.stack([getattr(t, name)[key][at] for t, at in zip(trajectories, rows, strict=True)])
                for key in first}

    return steps, table("values"), table("change")


def plot_trajectories(trajectories: list[Trajectory], path=None, title: str = "", measure: str | None = None):
    """One run's trajectory, or several seeds' (their mean, and the range as bands): left,
    each layer's similarity to the base by step on a fixed 0-1 color scale (1: unchanged);
    right, each layer's parameter change ||W - W0|| / ||W0|| by step. Returns the
    matplotlib Figure; writes a PNG to ``path`` when given."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    first = trajectories[0]
    measure = measure or first.measures[0]
    steps, values, change = stacked(trajectories)
    figure, (heat, curves) = plt.subplots(1, 2, figsize=(11, 4.0))
    heat.set_gid(f"{title} {measure}".strip())
    image = heat.imshow(values[measure].mean(axis=0).T, vmin=0, vmax=1, cmap="viridis", origin="lower",
                        aspect="auto", interpolation="nearest")
    every = max(1, len(steps) // 10)
    ticks, labels = range(0, len(steps), every), [str(s) for s in steps[::every]]
    short = short_layer_names(first.layers)
    heat.set_xticks(ticks, labels)
    heat.set_yticks(range(len(first.layers)), short)
    heat.set_xlabel("optimizer step")
    heat.set_ylabel("layer")
    figure.colorbar(image, ax=heat, label=f"{measure.upper()} to the base (1: unchanged)")
    curves.set_gid(f"{title} change".strip())
    moved = change["total"]
    x = np.arange(len(steps))
    for j, label in enumerate(short):
        color = plt.cm.viridis(j / max(1, len(short) - 1))
        runs = moved[:, :, j]
        curves.plot(x, runs.mean(axis=0), color=color, label=label)
        if len(trajectories) > 1:
            curves.fill_between(x, runs.min(axis=0), runs.max(axis=0), color=color, alpha=0.2, lw=0)
    curves.set_xticks(ticks, labels)
    curves.set_xlabel("optimizer step")
    curves.set_ylabel("||W - W0|| / ||W0||")
    curves.set_ylim(bottom=0)
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7, framealpha=0.6, loc="upper left", title="layer", title_fontsize=7)
    over = f", mean of {len(trajectories)} seeds (bands: their range)" if len(trajectories) > 1 else ""
    figure.suptitle(f"{title} while it trained{over}".strip(), fontsize=10)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
