"""``TrackLayers``: a Trainer callback that records, while a run trains, every layer's
similarity to the base model on a fixed tracking set and its parameters' relative change
from the base (a ``Trajectory``), every ``every`` optimizer steps, at step 0 and at the
end.

The base model's side is computed once, before the first step: its rows of the tracking
set (in memory up to ``memory_budget`` bytes, the rest in a float32 file in the run
folder) and its parameters (on the CPU). A checkpoint then costs one forward pass of the
tracking set through the model being trained, in eval mode (dropout off; the training
mode is restored after), the moments of its rows against the base's, and one pass over
the parameters; nothing else grows with the number of checkpoints. Under DDP the ranks
share out the tracking inputs (one group each, as ``compare_models``) and merge their
moments; rank 0 writes ``trajectory.json``, after every checkpoint, atomically. A run
resumed from a checkpoint keeps the trajectory up to that step and continues it.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._util import distributed as ranks
from .._util import files, fingerprint
from .._util.options import option, with_overrides
from .._util.validation import positive_int
from ..activations.align import ROWS, as_items
from ..activations.capture import layer_names
from ..activations.models import encoder_of, load_model
from ..activations.options import CaptureOptions
from ..activations.stream import ActivationStream, group_chunks
from ..similarity import registry
from ..similarity.grouped import GroupedMoments
from .layers import layer_parameters
from .trajectory import BLOCKS, Trajectory

TRAJECTORY = "trajectory.json"


@dataclass(frozen=True)
class TrackOptions:
    """every: optimizer steps between checkpoints (step 0 and the last step are always
    recorded); measures: the similarity measures (moment measures of ``compare_models``:
    "rsa", "cka", ...); rdm: the RDM of "rsa"; rows, batch_size: how the tracking set is
    read; memory_budget: bytes of the base model's rows held in memory (beyond it, they go
    to a file in the run folder)."""

    every: int = option(50, help="optimizer steps between checkpoints")
    measures: tuple[str, ...] = option(("rsa", "cka"), help="similarity measures (moment measures)")
    rdm: str = option("correlation", choices=registry.MOMENT_RDMS, help='the RDM of "rsa"')
    rows: str = option("tokens", choices=ROWS, help="the rows taken from each layer")
    batch_size: int = option(64, help="inputs per forward pass")
    memory_budget: int = option(1 << 30, help="bytes of base rows in memory (beyond: on disk)")

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every (of track=) must be a whole number of optimizer steps >= 1, got "
                             f"{self.every!r}")
        if isinstance(self.measures, str):  # one name
            object.__setattr__(self, "measures", (self.measures,))
        if not self.measures:
            raise ValueError(f"measures (of track=) must be a non-empty list of names, got {self.measures!r}")
        for name in self.measures:
            registry.get(name)
            registry.check_streamable(name, {"rdm": self.rdm})
        registry.check_rdms([self.rdm])
        if self.rows not in ROWS:
            raise ValueError(f"rows (of track=) must be one of {ROWS}, got {self.rows!r}")
        positive_int(self.batch_size, "batch_size (of track=)")
        positive_int(self.memory_budget, "memory_budget (of track=)")


def tracking_of(track) -> tuple[list, TrackOptions] | None:
    """``track=`` as a user gives it: None, the tracking set (sentences, pairs, a reader's
    output), or a mapping ``{"data": ..., **TrackOptions fields}``: (items, options)."""
    if track is None:
        return None
    overrides = {}
    if isinstance(track, Mapping):
        overrides = dict(track)
        if "data" not in overrides:
            raise ValueError("track= needs its tracking set: track={'data': sentences, 'every': 50, ...}")
        track = overrides.pop("data")
    options = with_overrides(TrackOptions, None, **overrides)
    if hasattr(track, "__len__") and len(track) == 0:
        raise ValueError("the tracking set has no inputs: pass some sentences to track= (or leave it out)")
    return as_items(track), options


class _BaseRows:
    """The base model's rows of this rank's tracking inputs, chunk by chunk in the order
    the tracking pass reads them: (items [m], rows [L, m, d] float32) held in memory while
    they fit ``budget`` bytes, the rest appended to ``spill`` (removed by ``close``)."""

    def __init__(self, budget: int, spill: Path) -> None:
        self.budget, self.spill = budget, spill
        self.held: list[tuple[np.ndarray, torch.Tensor | tuple[int, tuple]]] = []
        self.bytes_held, self.n_rows, self._written = 0, 0, 0

    def add(self, items: np.ndarray, rows: torch.Tensor) -> None:
        rows = rows.detach().to("cpu", torch.float32)
        self.n_rows += rows.shape[1]
        size = rows.numel() * 4
        if self.bytes_held + size <= self.budget:
            self.held.append((items, rows.clone()))
            self.bytes_held += size
            return
        with open(self.spill, "ab") as f:
            f.write(rows.numpy().tobytes())
        self.held.append((items, (self._written, tuple(rows.shape))))
        self._written += size

    def __iter__(self):
        for items, rows in self.held:
            if isinstance(rows, tuple):
                offset, shape = rows
                count = int(np.prod(shape))
                read = np.fromfile(self.spill, np.float32, count, offset=offset)
                rows = torch.from_numpy(read.reshape(shape))
            yield items, rows

    def close(self) -> None:
        self.held = []
        if self.spill.exists():
            self.spill.unlink()


class TrackLayers:
    """The Trainer callback (a ``transformers.TrainerCallback``; ``callback()`` makes one).

    base: the base model (name or folder) whose layers the run starts from; tokenizer: the
    run's; data: the tracking set (sentences, pairs, a reader's output); out_dir: the run
    folder (``trajectory.json``); distributed: share the tracking set out among the ranks
    of a torch.distributed process group."""

    def __init__(self, base, tokenizer, data, out_dir, options: TrackOptions | None = None,
                 distributed: bool = False) -> None:
        given = dataclasses.asdict(options or TrackOptions())
        self.items, self.options = tracking_of({"data": data, **given})
        self.base, self.tokenizer, self.out = base, tokenizer, Path(out_dir)
        self.distributed = distributed
        self.capture = CaptureOptions(rows=self.options.rows, batch_size=self.options.batch_size)
        self.data = fingerprint.of_items(self.items)
        self.trajectory: Trajectory | None = None
        self.base_rows: _BaseRows | None = None
        self.base_parameters: dict[str, torch.Tensor] = {}

    # -- the callback ---------------------------------------------------------------------
    def callback(self):
        """This tracker as a ``transformers.TrainerCallback``."""
        import transformers

        tracker = self

        class _Callback(transformers.TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kwargs):
                tracker.begin(model, state.global_step)

            def on_step_end(self, args, state, control, model=None, **kwargs):
                if state.global_step % tracker.options.every == 0:
                    tracker.record(model, state.global_step)

            def on_train_end(self, args, state, control, model=None, **kwargs):
                if not tracker.trajectory.steps or tracker.trajectory.steps[-1] != state.global_step:
                    tracker.record(model, state.global_step)
                tracker.end()

        return _Callback()

    def begin(self, model: torch.nn.Module, step: int) -> None:
        """Before the first step of this call (``step``: where a resumed run starts): the
        base's rows and parameters, and the trajectory so far."""
        base, _ = load_model(self.base, device=next(model.parameters()).device)
        self.base_parameters = {name: p.detach().to("cpu", torch.float32).clone()
                                for name, p in base.named_parameters()}
        spill = self.out / f".track-base-{ranks.rank_and_world()[0]}.f32"
        self.base_rows = _BaseRows(self.options.memory_budget, spill)
        self.base_rows.close()  # a spill left by a killed run
        with torch.no_grad():
            for chunk in self._chunks(base):
                self.base_rows.add(chunk.item, chunk.states[0])
        n_rows, truncated = (self.base_rows.n_rows, self._stream.truncated)
        if self._sharded():
            n_rows, truncated = ranks.total(n_rows, truncated)
        if truncated and ranks.is_main():
            warnings.warn(f"{truncated} of the {len(self.items)} tracking inputs are longer than "
                          f"{self._stream.max_length} tokens: the trajectory measures them truncated",
                          stacklevel=2)
        if n_rows == 0:
            raise ValueError(f"the tracking set's {len(self.items)} inputs give no {self.options.rows} rows: "
                             "track longer inputs or another rows kind")
        layers = layer_names(len(layer_parameters(base)))
        del base
        o = self.options
        fresh = Trajectory(layers, list(o.measures), o.every, self.data, len(self.items), n_rows, o.rows,
                           o.rdm)
        self.trajectory = self._so_far(fresh, step)
        if step == 0 and not self.trajectory.steps:
            self.record(model, 0)

    def record(self, model: torch.nn.Module, step: int) -> None:
        """One checkpoint: every layer's similarity to the base and parameter change. While
        the weights are still the base's, bit for bit (step 0 without re-initialized
        layers), the forward pass would give the base's rows again: they are reused."""
        change = parameter_change(encoder_of(model), self.base_parameters)
        unchanged = all(np.all(v[np.isfinite(v)] == 0) for v in change.values())
        values = self._similarity(None if unchanged else model)
        self.trajectory.append(step, values, change)
        if ranks.is_main():
            files.write_json(self.out / TRAJECTORY, self.trajectory.to_dict())

    def end(self) -> None:
        if self.base_rows is not None:
            self.base_rows.close()
        self.base_parameters = {}

    # -- the pieces -------------------------------------------------------------------------
    def _sharded(self) -> bool:
        return self.distributed and ranks.active()

    def _chunks(self, encoder: torch.nn.Module):
        self._stream = ActivationStream([(encoder_of(encoder), self.tokenizer)], self.capture, ordered=False,
                                        progress=False)
        return group_chunks(self._stream, self.items, self._sharded())

    def _similarity(self, model: torch.nn.Module | None) -> dict[str, np.ndarray]:
        """Each measure per layer of ``model``'s rows against the base's (None: the base's
        own rows on both sides)."""
        n_layers, dim = self._stream.layers[0], self._stream.dims[0]  # a rank may have no rows
        rdms = (self.options.rdm,) if "rsa" in self.options.measures else ()
        moments = GroupedMoments(1, len(self.items), n_layers, dim, dim, pairs="diagonal", rdms=rdms)
        if model is None:
            for items, base in self.base_rows:
                moments.update(base, base, items)
        else:
            training = model.training
            model.eval()
            try:
                with torch.no_grad():
                    for chunk, (items, base) in zip(self._chunks(model), self.base_rows, strict=True):
                        if not np.array_equal(chunk.item, items):
                            raise RuntimeError("the tracking pass read other rows than the base's: the "
                                               "tokenizer or the capture settings changed during training")
                        moments.update(base, chunk.states[0].to("cpu", torch.float32), chunk.item).flush()
            finally:
                model.train(training)
        if self._sharded():
            moments.sync()
        return moments.measures({name: {"rdm": self.options.rdm} for name in self.options.measures})

    def _so_far(self, fresh: Trajectory, step: int) -> Trajectory:
        """The saved trajectory up to ``step`` (a resumed run), else ``fresh``; one of other
        tracking settings is an error."""
        path = self.out / TRAJECTORY
        if step == 0 or not path.exists():
            return fresh
        saved = Trajectory.load(path)
        differ = _other_settings(saved, self.data, self.options)
        differ += ["layers"] if saved.layers != fresh.layers else []
        if differ:
            raise ValueError(f"{path} was recorded with other tracking settings ({', '.join(differ)}); a "
                             "resumed run continues its trajectory with the same ones: track as before, or "
                             "remove it (and the checkpoints) to start over")
        return saved.until(step)


def parameter_change(encoder: torch.nn.Module, base: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """{block: [L]}: ||W - W_0|| / ||W_0|| over each layer's parameters ("total") and over
    its attention, feed-forward and LayerNorm ones (NaN where the layer has none), W_0 the
    base's parameters by name."""
    parameters = dict(encoder.named_parameters())
    missing = sorted(set(parameters) - set(base))
    if missing:
        raise ValueError(f"the base model has no parameter {missing[0]!r}: the run's encoder must have the "
                         "base's architecture")
    groups = layer_parameters(encoder)
    out = {block: np.full(len(groups), np.nan) for block in BLOCKS}
    with torch.no_grad():
        squared = {name: (float(((p.detach().to("cpu", torch.float32) - base[name]) ** 2).sum()),
                          float((base[name] ** 2).sum())) for name, p in parameters.items()}
    for i, blocks in enumerate(groups):
        for block in BLOCKS:
            names = [n for b, ns in blocks.items() for n in ns] if block == "total" else blocks.get(block, [])
            if names:
                moved, size = (sum(squared[n][k] for n in names) for k in (0, 1))
                out[block][i] = np.sqrt(moved / size) if size > 0 else np.nan
    return out


def _other_settings(saved: Trajectory, data: str, options: TrackOptions) -> list[str]:
    """The tracking settings a saved trajectory was recorded with that differ from these."""
    asked = {"every": options.every, "measures": list(options.measures), "data": data, "rows": options.rows,
             "rdm": options.rdm}
    return [k for k, v in asked.items() if getattr(saved, k) != v]


def load_trajectory(out_dir: str | os.PathLike) -> Trajectory:
    """The trajectory a tracked run recorded in its folder."""
    path = Path(out_dir) / TRAJECTORY
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the run in {out_dir} was not tracked (pass track= "
                                "to ftlens.finetune)")
    return Trajectory.load(path)


def check_tracked(out_dir: Path, items: list, options: TrackOptions) -> None:
    """A finished run asked for a trajectory must have recorded it, with these settings."""
    path = Path(out_dir) / TRAJECTORY
    if not path.is_file():
        raise ValueError(f"the run in {out_dir} finished without track=, and a trajectory cannot be recorded "
                         "after training: pass another out_dir to train again with track=")
    differ = _other_settings(Trajectory.load(path), fingerprint.of_items(items), options)
    if differ:
        raise ValueError(f"the run in {out_dir} recorded its trajectory with other tracking settings "
                         f"({', '.join(differ)}): track as it did, or pass another out_dir to train again")
