"""The activation store: every layer of one model over a data set, on disk, for multi-pass
work (probes, pairwise tiles).

Layout of a store folder::

    manifest.json      model, data fingerprint, options, layers, rows, label vocabularies,
                       shards done (rewritten atomically after each shard)
    layer_00.npy ...   one [rows, hidden] array per layer (np.load(..., mmap_mode="r"))
    rows.npy           [rows, 2] int64: (input index, word or token index) of each row
    labels/<name>.npy  per-row label codes (UPOS, XPOS, deprel, head, NLI label, ...; with
                       word labels also "word", the word form, for control tasks)

The row plan (and so every file's shape) is computed before any forward pass, so an
interrupted write resumes at the first unfinished shard and ends byte-identical to an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from .._util import fingerprint, runfolder
from .._util.files import atomic_write, reserve, write_json
from .._util.options import with_overrides
from .._util.validation import positive_int
from . import align
from .capture import layer_names
from .models import as_model
from .options import CaptureOptions
from .stream import ActivationStream

FORMAT = "ftlens-store-2"  # 2: per-shard checksums
DTYPES = ("float16", "float32")


def layer_file(index: int) -> str:
    return f"layer_{index:02d}.npy"


def label_schema(items: Sequence[align.Item], rows: str) -> dict[str, bool]:
    """The labels a store of ``items`` with ``rows`` keeps: name -> whether it is coded
    through a vocabulary (False: integer labels such as "head")."""
    first = items[0]
    schema = {"label": True} if first.label is not None else {}
    if rows == "words" and first.word_labels:
        schema["word"] = True  # the word forms, for control tasks
        schema |= {name: name != "head" for name in first.word_labels}
    return schema


def _row_labels(items: Sequence[align.Item], item: np.ndarray, unit: np.ndarray, rows: str):
    """{name: (codes [rows] int64, vocabulary or None for integer labels)}, for each label
    of ``label_schema``."""
    out = {}
    for name, coded in label_schema(items, rows).items():
        if name == "label":
            values = [items[i].label for i in item]
            vocab = sorted({it.label for it in items if it.label is not None})
        elif name == "word":
            values = [_word_form(items[i], u) for i, u in zip(item, unit, strict=True)]
            vocab = sorted(set(values))
        else:
            values = [items[i].word_labels[name][u] if u < len(items[i].word_labels[name]) else None
                      for i, u in zip(item, unit, strict=True)]
            vocab = sorted({v for it in items for v in it.word_labels[name]}) if coded else None
        if not coded:
            out[name] = (np.array([-1 if v is None else v for v in values], dtype=np.int64), None)
            continue
        index = {v: i for i, v in enumerate(vocab)}
        out[name] = (np.array([index.get(v, -1) for v in values], dtype=np.int64), vocab)
    return out


def _word_form(item: align.Item, unit: int) -> str:
    start, end = item.segments[0].spans[unit]
    return item.segments[0].text[start:end]


def _plan(stream: ActivationStream, items: Sequence[align.Item], lengths: np.ndarray):
    """Shards (the stream's blocks) and their rows, from tokenization alone:
    (shard bounds, shard row counts, item, unit)."""
    bounds, counts, items_of, units_of = [], [], [], []
    for start, block in stream.blocks(items, lengths):
        item, unit = stream.plan_block(block)
        bounds.append((start, start + len(block)))
        counts.append(len(item))
        items_of.append(item + start)
        units_of.append(unit)
    return bounds, counts, np.concatenate(items_of), np.concatenate(units_of)


def write(model, data, path: str | os.PathLike, dtype: str = "float16", *,
          capture: CaptureOptions | None = None, shard_size: int = 256, max_shard_tokens: int = 8192,
          window_bytes: int | None = None, device=None, progress: bool = True,
          **capture_overrides) -> ActivationStore:
    """Captures every layer of ``model`` over ``data`` into a store folder at ``path``.

    Rerunning the same call after an interruption resumes at the first unfinished shard
    (finished shards are checked against their checksums, missing or damaged files are
    rebuilt); a finished store is returned as is. A folder holding a store of another
    model, data set or options is refused, and so is a second writer while one writes.

    Args:
        model: a name, a folder, "minilm" or a (model, tokenizer) pair.
        data: sentences, sentence pairs or a reader's output (labels are carried along).
        dtype: "float16" (half the disk; values beyond +-65504 are refused) or "float32".
        capture: which rows to keep (CaptureOptions); keyword arguments override its
            fields, e.g. rows="words".
        shard_size, max_shard_tokens: at most this many inputs and tokens per shard (the
            unit of resumption).
        window_bytes: the shards of a window of this much captured float32 rows (at most
            one per token; default 1 GiB) are length-planned together, so that batches
            carry little padding, and held until the window's shards are written: the
            memory of a write in flight, and the most work an interrupted write loses.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    options = with_overrides(CaptureOptions, capture, **capture_overrides)
    path = Path(path)
    model, tokenizer = as_model(model, device)
    items = align.as_items(data)
    stream = ActivationStream([(model, tokenizer)], options, block_size=shard_size,
                              max_block_tokens=max_shard_tokens, window_bytes=window_bytes, progress=False)
    align.check_row_options(options.rows, options.word_pool, options.segment, len(items[0].segments))
    identity = {
        "format": FORMAT,
        "model": getattr(model.config, "_name_or_path", "") or type(model).__name__,
        "model_fingerprint": fingerprint.of_weights(model),
        "data_fingerprint": fingerprint.of_items(items),
        "n_inputs": len(items),
        "rows": options.rows, "word_pool": options.word_pool, "segment": options.segment, "dtype": dtype,
        "shard_size": int(shard_size), "max_shard_tokens": int(max_shard_tokens),
        "max_length": stream.max_length, "autocast": options.autocast,
    }
    manifest = _existing_manifest(path)
    if manifest is not None:
        _check_identity(path, manifest, identity)
        if manifest["complete"] and not damaged_files(path, manifest):
            return ActivationStore(path)  # finished: no lock needed, a read-only folder works
    path.mkdir(parents=True, exist_ok=True)
    with writer_lock(path):
        manifest = _existing_manifest(path)
        lengths = stream.lengths(items)  # tokenized once for the plan and the windows
        if manifest is None:
            manifest = _create(path, identity, stream, items, lengths)
        else:
            _check_identity(path, manifest, identity)
            _repair(path, manifest, stream, items, lengths)
        _fill(path, manifest, stream, items, lengths, progress)
    return ActivationStore(path)


def _existing_manifest(path: Path) -> dict | None:
    return read_manifest(path) if (path / "manifest.json").exists() else None


def _check_identity(path: Path, manifest: dict, identity: dict) -> None:
    runfolder.refuse_other(path, "a store", manifest, identity, "pass another path")


def writer_lock(path: Path):
    """One writer per store folder; a second is refused at once."""
    return runfolder.one_worker(path, "writing a store", "write to another path")


def _plan_files(path: Path, identity: dict, stream: ActivationStream, items, lengths: np.ndarray) -> tuple:
    """Writes rows.npy and the label files from the row plan; returns (bounds, counts, vocabularies)."""
    bounds, counts, item, unit = _plan(stream, items, lengths)
    atomic_write(path / "rows.npy", lambda tmp: np.save(tmp, np.stack([item, unit], 1)))
    vocabularies = {}
    for name, (codes, vocab) in _row_labels(items, item, unit, identity["rows"]).items():
        atomic_write(path / "labels" / f"{name}.npy", lambda tmp, c=codes: np.save(tmp, c))
        vocabularies[name] = vocab
    return bounds, counts, vocabularies


def _allocate(path: Path, name: str, dtype: str, shape: tuple[int, int]) -> None:
    def allocate(tmp):
        np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape).flush()
        reserve(tmp, f"the store's {name}")

    atomic_write(path / name, allocate)


def _create(path: Path, identity: dict, stream: ActivationStream, items, lengths: np.ndarray) -> dict:
    bounds, counts, vocabularies = _plan_files(path, identity, stream, items, lengths)
    n_rows, dim = int(sum(counts)), stream.dims[0]
    for layer in range(stream.layers[0]):
        _allocate(path, layer_file(layer), identity["dtype"], (n_rows, dim))
    manifest = {
        **identity,
        "n_rows": n_rows, "n_layers": stream.layers[0], "dim": dim,
        "layers": layer_names(stream.layers[0]),
        "labels": vocabularies,
        "files": {"layers": [layer_file(i) for i in range(stream.layers[0])], "rows": "rows.npy",
                  "labels": {name: f"labels/{name}.npy" for name in vocabularies}},
        "shard_bounds": [[int(a), int(b)] for a, b in bounds],
        "shard_rows": [int(c) for c in counts],
        "shard_checksums": [None] * len(counts),  # per finished shard: one CRC-32 per layer
        "shards_done": 0, "complete": False,
        "truncated": 0, "words_dropped": 0,
    }
    write_json(path / "manifest.json", manifest)
    return manifest


def _repair(path: Path, manifest: dict, stream: ActivationStream, items, lengths: np.ndarray) -> None:
    """Before resuming: rebuilds missing or damaged files and forgets every finished shard
    whose checksum no longer matches its rows (they are written again)."""
    damaged = damaged_files(path, manifest)
    if {"rows", "labels"} & {kind for kind, _, _ in damaged}:
        _plan_files(path, manifest, stream, items, lengths)
    for kind, name, _ in damaged:
        if kind == "layer":
            _allocate(path, name, manifest["dtype"], (manifest["n_rows"], manifest["dim"]))
    layers = [np.load(path / name, mmap_mode="r") for name in manifest["files"]["layers"]]
    offsets = _offsets(manifest)
    for s, checksums in enumerate(manifest["shard_checksums"]):
        if checksums is not None and _checksums(layers, offsets[s], offsets[s + 1]) != checksums:
            manifest["shard_checksums"][s] = None
    manifest["shards_done"] = sum(c is not None for c in manifest["shard_checksums"])
    manifest["complete"] = False
    write_json(path / "manifest.json", manifest)


def _offsets(manifest: dict) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(manifest["shard_rows"])]).astype(np.int64)


def _checksums(layers: Sequence[np.ndarray], start: int, stop: int) -> list[int]:
    return [zlib.crc32(np.ascontiguousarray(layer[start:stop]).data) for layer in layers]


def _fill(path: Path, manifest: dict, stream: ActivationStream, items, lengths: np.ndarray,
          progress: bool) -> None:
    from tqdm.auto import tqdm

    offsets = _offsets(manifest)
    files = [np.load(path / name, mmap_mode="r+") for name in manifest["files"]["layers"]]
    todo = [s for s, c in enumerate(manifest["shard_checksums"]) if c is None]
    if not todo:  # a repair that rebuilt only the row or label files
        manifest["complete"] = True
        write_json(path / "manifest.json", manifest)
        return
    shard_of = {tuple(manifest["shard_bounds"][s]): s for s in todo}
    with tqdm(total=len(offsets) - 1, initial=len(offsets) - 1 - len(todo), unit="shard", desc="store",
              disable=not progress) as bar:
        for window in stream.windows(list(shard_of), lengths):
            for bounds, chunk in zip(window, stream.window(items, window, lengths), strict=True):
                _write_shard(path, manifest, files, offsets, shard_of[bounds], chunk)
                bar.update(1)


def _write_shard(path: Path, manifest: dict, files: list, offsets: np.ndarray, s: int, chunk) -> None:
    """Writes shard ``s``'s rows and records it as finished in the manifest."""
    if chunk.states[0].shape[1] != manifest["shard_rows"][s]:
        raise RuntimeError(f"shard {s} produced {chunk.states[0].shape[1]} rows, planned "
                           f"{manifest['shard_rows'][s]}")
    values = _in_store_dtype(chunk.states[0].cpu().numpy(), manifest["dtype"], path)
    for layer, f in enumerate(files):
        f[offsets[s] : offsets[s + 1]] = values[layer]
        f.flush()
    manifest["shard_checksums"][s] = _checksums(values, 0, values.shape[1])
    manifest["shards_done"] = sum(c is not None for c in manifest["shard_checksums"])
    manifest["truncated"] += chunk.truncated
    manifest["words_dropped"] += chunk.words_dropped
    manifest["complete"] = manifest["shards_done"] == len(offsets) - 1
    write_json(path / "manifest.json", manifest)


def _in_store_dtype(values: np.ndarray, dtype: str, path: Path, first_layer: int = 0) -> np.ndarray:
    """values [L, rows, dim] float32 (layers first_layer, ...) in the store's dtype; float16
    overflow is an error naming the layer."""
    if dtype != "float16":
        return values
    limit = float(np.finfo(np.float16).max)
    peaks = np.abs(values).reshape(values.shape[0], -1).max(1)
    for layer, peak in enumerate(peaks):
        if peak > limit:
            raise ValueError(
                f"layer {first_layer + layer} has values up to {peak:.4g}, beyond float16's range "
                f"(+-{limit:.0f}); writing {path} in float16 would turn them into inf. Pass dtype='float32'."
            )
    return values.astype(np.float16)


REQUIRED_KEYS = ("format", "n_rows", "n_layers", "dim", "dtype", "files", "labels", "shard_rows",
                 "shard_bounds", "shard_checksums", "complete")


def read_manifest(path: Path) -> dict:
    """The manifest of the store at ``path``, with clear errors for a damaged one."""
    manifest_path = path / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{manifest_path} is damaged ({err}); delete the folder {path} to write the store "
                         "again") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_path} is not a store manifest (a JSON object); delete the folder {path}")
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown store format {manifest.get('format')!r} (expected {FORMAT!r})")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{manifest_path} lacks {', '.join(missing)}; delete the folder {path} to write the "
                         "store again")
    return manifest


def damaged_files(path: Path, manifest: dict) -> list[tuple[str, str, str]]:
    """(kind, file, problem) of every store file that is missing or differs from the
    manifest's shape or dtype (kind: "layer", "rows" or "labels"); reads headers only."""
    n_rows, dim = manifest["n_rows"], manifest["dim"]
    expected = [("layer", name, (n_rows, dim), manifest["dtype"]) for name in manifest["files"]["layers"]]
    expected.append(("rows", manifest["files"]["rows"], (n_rows, 2), "int64"))
    expected += [("labels", name, (n_rows,), "int64") for name in manifest["files"]["labels"].values()]
    found = [(kind, name, _npy_problem(path / name, shape, dtype)) for kind, name, shape, dtype in expected]
    return [entry for entry in found if entry[2] is not None]


def _npy_problem(file: Path, shape: tuple, dtype: str) -> str | None:
    """Why ``file`` is not a complete .npy array of this shape and dtype (None if it is)."""
    if not file.is_file():
        return "missing"
    try:
        with open(file, "rb") as f:
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[np.lib.format.read_magic(f)]
            found_shape, fortran, found_dtype = read_header(f)
            data_start = f.tell()
    except (ValueError, OSError, KeyError) as err:
        return f"not a .npy file ({err})"
    if tuple(found_shape) != tuple(shape) or found_dtype != np.dtype(dtype) or fortran:
        return f"holds {found_dtype} {tuple(found_shape)}, expected {dtype} {tuple(shape)}"
    size = file.stat().st_size
    if size != data_start + int(np.prod(shape)) * np.dtype(dtype).itemsize:
        return f"truncated or padded ({size} bytes)"
    return None


class _StoreReader:
    """What probing and tiles read from a store, on disk or in memory: layers [rows, dim],
    the row index and the per-row labels, described by ``manifest``."""

    manifest: dict

    n_rows = property(lambda self: self.manifest["n_rows"])
    n_layers = property(lambda self: self.manifest["n_layers"])
    dim = property(lambda self: self.manifest["dim"])

    def layer(self, index: int) -> np.ndarray:
        if not 0 <= index < self.n_layers:
            raise IndexError(f"layer {index} out of range: the store has {self.n_layers} layers")
        return self._layer(index)

    def label_names(self) -> list[str]:
        return list(self.manifest["labels"])

    def labels(self, name: str) -> tuple[np.ndarray, list | None]:
        """(codes [rows], vocabulary) of a carried label; integer labels (head) have no vocabulary."""
        if name not in self.manifest["labels"]:
            raise KeyError(f"no label {name!r} in this store; it has {self.label_names()}")
        return self._label_codes(name), self.manifest["labels"][name]

    def chunks(self, chunk_rows: int = 8192, layers: Sequence[int] | None = None,
               dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """Yields [len(layers), rows, dim] tensors of consecutive rows."""
        chunk_rows = positive_int(chunk_rows, "chunk_rows")
        layers = range(self.n_layers) if layers is None else list(layers)
        arrays = [self.layer(i) for i in layers]
        for start in range(0, self.n_rows, chunk_rows):
            self.check_intact(layers)
            rows = [torch.from_numpy(np.array(a[start : start + chunk_rows])) for a in arrays]
            yield torch.stack(rows).to(dtype)

    def check_intact(self, layers: Sequence[int]) -> None:
        """Before each chunk is read: the layers are still whole (reading a memmap whose file
        was cut after it was opened ends the process with a bus error)."""


class ActivationStore(_StoreReader):
    """Read access to a finished store: memory-mapped layers, row index, labels, chunks."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._sizes: dict[int, int] = {}  # layer -> its file's size when checked whole (check_intact)
        if not (self.path / "manifest.json").exists():
            raise FileNotFoundError(f"{self.path} is not an activation store (no manifest.json)")
        self.manifest = read_manifest(self.path)
        if not self.manifest["complete"]:
            done, total = self.manifest.get("shards_done", 0), len(self.manifest["shard_rows"])
            raise ValueError(
                f"{self.path} is incomplete ({done}/{total} shards written); rerun "
                "ftlens.store.write with the same arguments to resume it"
            )
        for _, name, problem in damaged_files(self.path, self.manifest):
            raise ValueError(f"{self.path / name}: {problem}. Rerun ftlens.store.write with the same "
                             "arguments to rebuild it")

    def verify(self) -> None:
        """Reads every layer and checks each shard against its checksum in the manifest
        (a full read of the store); raises naming the first damaged shard and layer."""
        layers = [self.layer(i) for i in range(self.n_layers)]
        offsets = _offsets(self.manifest)
        for s, want in enumerate(self.manifest["shard_checksums"]):
            got = _checksums(layers, offsets[s], offsets[s + 1])
            if got != want:
                layer = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
                raise ValueError(f"{self.path / layer_file(layer)}: shard {s} (rows {offsets[s]}-"
                                 f"{offsets[s + 1]}) does not match its checksum. Rerun ftlens.store.write "
                                 "with the same arguments to rewrite it")

    def __repr__(self) -> str:
        return (f"ActivationStore({str(self.path)!r}, rows={self.n_rows}, layers={self.n_layers}, "
                f"dim={self.dim})")

    def check_intact(self, layers: Sequence[int]) -> None:
        # each file checked whole once, then a stat per layer and chunk against that size
        for i in layers:
            file = self.path / layer_file(i)
            try:
                size = file.stat().st_size
            except OSError:
                size = -1
            if i not in self._sizes and size >= 0 and not _npy_problem(file, (self.n_rows, self.dim),
                                                                self.manifest["dtype"]):
                self._sizes[i] = size
            if self._sizes.get(i) != size:
                problem = _npy_problem(file, (self.n_rows, self.dim), self.manifest["dtype"]) or "replaced"
                raise ValueError(f"{file} changed while it was read: {problem}. Rerun ftlens.store.write "
                                 "with the same arguments to rebuild it")

    def _layer(self, index: int) -> np.ndarray:
        """Layer ``index`` (0 = embeddings) as a read-only memmap [rows, dim]."""
        return np.load(self.path / layer_file(index), mmap_mode="r")

    @property
    def rows(self) -> np.ndarray:
        """[rows, 2] int64: (input index, word or token index) of each row."""
        return np.load(self.path / "rows.npy")

    def _label_codes(self, name: str) -> np.ndarray:
        return np.load(self.path / self.manifest["files"]["labels"][name])


def read(path: str | os.PathLike) -> ActivationStore:
    """Opens a finished store for reading."""
    return ActivationStore(path)


def as_store(source, role: str = "store"):
    """A store to read: a folder path is opened; an ``ActivationStore`` or an in-memory
    ``from_arrays`` store is taken as it is; anything else is a TypeError naming ``role``."""
    if isinstance(source, (str, os.PathLike)):
        return ActivationStore(source)
    if isinstance(source, _StoreReader):
        return source
    raise TypeError(f"{role} must be a store folder, an ActivationStore or ftlens.store.from_arrays(...), "
                    f"got {type(source).__name__}")


class ArrayStore(_StoreReader):
    """A store's read face over arrays in memory (or memmaps): what ``from_arrays`` returns
    without a path."""

    def __init__(self, layers: Sequence[np.ndarray], index: np.ndarray, codes: dict[str, np.ndarray],
                 manifest: dict) -> None:
        self._layers, self._index, self._codes, self.manifest = list(layers), index, codes, manifest

    def __repr__(self) -> str:
        return f"ArrayStore(rows={self.n_rows}, layers={self.n_layers}, dim={self.dim})"

    def _layer(self, index: int) -> np.ndarray:
        return self._layers[index]

    @property
    def rows(self) -> np.ndarray:
        return self._index

    def _label_codes(self, name: str) -> np.ndarray:
        return self._codes[name]


def _label_codes(name: str, values, n_rows: int) -> tuple[np.ndarray, list | None]:
    """(codes, vocabulary) of one label given as values per row; heads stay integers."""
    values = np.asarray(values)
    if values.shape != (n_rows,):
        count = values.shape[0] if values.ndim else 0
        raise ValueError(f"label {name!r} has {count} values for {n_rows} rows; pass one value per row")
    if name == "head":
        if values.dtype.kind not in "iu":
            raise TypeError("label 'head' must hold integers (1-based head word, 0 = root), got "
                            f"{values.dtype}")
        return values.astype(np.int64), None
    vocab, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), [v.item() if hasattr(v, "item") else v for v in vocab]


def from_arrays(layers, labels: dict | None = None, *, rows: str = "words", index=None,
                model: str = "arrays", path: str | os.PathLike | None = None,
                dtype: str = "float32") -> ArrayStore | ActivationStore:
    """A store from activations you already have, for ``ftlens.probe`` and friends.

    Args:
        layers: [L, n, d] array, or a list of L arrays [n, d] (memmaps are read lazily).
        labels: name -> one value per row (strings or integers); "head" holds the 1-based
            head word of each row's word within its input (0 = root) for edge and
            structural probes, "word" the word form for control tasks.
        rows: what a row is ("words", "tokens", "cls" or "mean").
        index: [n, 2] (input, word) of each row; by default every row is its own input.
        model: a name recorded as the model (train and eval stores must agree).
        path: write a store folder there (returned as an ``ActivationStore``, in ``dtype``)
            instead of keeping the arrays in memory.

    Example::

        store = ftlens.store.from_arrays(hidden, {"upos": tags}, rows="words")
    """
    layers = [np.asarray(a) if not isinstance(a, np.ndarray) else a for a in layers]
    if not layers or any(a.ndim != 2 or a.shape != layers[0].shape for a in layers):
        raise ValueError("layers must be [L, n, d] or a list of [n, d] arrays of one shape")
    n_rows, dim = layers[0].shape
    if rows not in align.ROWS:
        raise ValueError(f"rows must be one of {align.ROWS}, got {rows!r}")
    index = np.stack([np.arange(n_rows), np.zeros(n_rows, dtype=np.int64)], 1) if index is None else index
    index = np.asarray(index, dtype=np.int64)
    if index.shape != (n_rows, 2):
        raise ValueError(f"index must be [n_rows, 2] = [{n_rows}, 2] (input, word), got {index.shape}")
    coded = {name: _label_codes(name, values, n_rows) for name, values in (labels or {}).items()}
    digest = hashlib.sha256(index.tobytes())
    for name, (codes, vocab) in sorted(coded.items()):
        digest.update(name.encode() + codes.tobytes() + json.dumps(vocab).encode())
    manifest = {
        "format": FORMAT, "model": model, "model_fingerprint": f"arrays:{model}",
        "data_fingerprint": digest.hexdigest(), "n_inputs": int(index[:, 0].max()) + 1 if n_rows else 0,
        "rows": rows, "word_pool": "first", "segment": None, "dtype": dtype,
        "n_rows": int(n_rows), "n_layers": len(layers), "dim": int(dim), "layers": layer_names(len(layers)),
        "labels": {name: vocab for name, (_, vocab) in coded.items()},
    }
    if path is None:
        return ArrayStore(layers, index, {name: codes for name, (codes, _) in coded.items()}, manifest)
    return _write_arrays(Path(path), layers, index, coded, manifest)


def _write_arrays(path: Path, layers, index, coded, manifest) -> ActivationStore:
    """Writes arrays as a finished store folder, copying a shard of rows at a time."""
    if manifest["dtype"] not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {manifest['dtype']!r}")
    path.mkdir(parents=True, exist_ok=True)
    if (path / "manifest.json").exists():
        raise ValueError(f"{path} already holds a store; pass another path or delete that folder")
    shard = 65536
    bounds = [(a, min(a + shard, manifest["n_rows"])) for a in range(0, manifest["n_rows"], shard)]
    with writer_lock(path):
        atomic_write(path / "rows.npy", lambda tmp: np.save(tmp, index))
        for name, (codes, _) in coded.items():
            atomic_write(path / "labels" / f"{name}.npy", lambda tmp, c=codes: np.save(tmp, c))
        checksums = [[] for _ in bounds]
        for i, layer in enumerate(layers):
            def fill(tmp, layer=layer, i=i):
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=manifest["dtype"], shape=layer.shape)
                reserve(tmp, f"the store's {layer_file(i)}")
                for s, (a, b) in enumerate(bounds):
                    out[a:b] = _in_store_dtype(np.asarray(layer[a:b])[None], manifest["dtype"], path, i)[0]
                    checksums[s].append(zlib.crc32(np.ascontiguousarray(out[a:b]).data))
                out.flush()

            atomic_write(path / layer_file(i), fill)
        write_json(path / "manifest.json", {
            **manifest, "shard_size": shard, "max_shard_tokens": None, "max_length": None, "autocast": None,
            "files": {"layers": [layer_file(i) for i in range(len(layers))], "rows": "rows.npy",
                      "labels": {name: f"labels/{name}.npy" for name in coded}},
            "shard_bounds": [list(b) for b in bounds], "shard_rows": [b - a for a, b in bounds],
            "shard_checksums": checksums, "shards_done": len(bounds), "complete": True,
            "truncated": 0, "words_dropped": 0,
        })
    return ActivationStore(path)
