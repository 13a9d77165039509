"""The activation store: contents, labels, chunks, refusal of a mismatched folder, and
resumption after the writing process is killed."""

import json
import subprocess
import sys
import time
from pathlib import Path

import ftlens
import numpy as np
import pytest
import torch
from ftlens.activations.stream import ActivationStream, Chunk
from ftlens.data import generate_pairs, generate_sentences

WRITER = Path(__file__).parents[1] / "helpers" / "store_writer.py"
SENTENCES = generate_sentences(30, seed=4)


@pytest.fixture(scope="module")
def store(tmp_path_factory, minilm):
    path = tmp_path_factory.mktemp("store")
    return ftlens.store.write(minilm, SENTENCES, path, rows="words", shard_size=8, progress=False)


def test_store_holds_every_layer_of_every_word(store, minilm):
    assert store.n_layers == 7 and store.dim == 384
    assert store.n_rows == sum(len(s) for s in SENTENCES)
    chunks = list(ActivationStream([minilm], rows="words", block_size=8, progress=False)(SENTENCES))
    chunk = Chunk([torch.cat([c.states[0] for c in chunks], 1)], np.concatenate([c.item for c in chunks]),
                  np.concatenate([c.unit for c in chunks]))
    for layer in range(7):
        stored = store.layer(layer)
        assert stored.dtype == np.float16 and isinstance(stored, np.memmap)
        np.testing.assert_array_equal(stored, chunk.states[0][layer].numpy().astype(np.float16))
    np.testing.assert_array_equal(store.rows, np.stack([chunk.item, chunk.unit], 1))


def test_store_carries_gold_labels(store):
    codes, vocab = store.labels("upos")
    assert [vocab[c] for c in codes] == [u for s in SENTENCES for u in s.upos]
    heads, none = store.labels("head")
    assert none is None and heads.tolist() == [h for s in SENTENCES for h in s.heads]
    assert set(store.label_names()) == {"upos", "xpos", "deprel", "head", "word"}
    forms, vocab = store.labels("word")
    assert [vocab[c] for c in forms] == [w for s in SENTENCES for w in s.words]
    with pytest.raises(KeyError, match="no label 'ner'"):
        store.labels("ner")


def test_store_chunks(store):
    chunks = list(store.chunks(chunk_rows=50, layers=[0, 6]))
    assert all(c.shape[0] == 2 and c.dtype == torch.float32 for c in chunks)
    stacked = torch.cat(chunks, 1)
    assert stacked.shape == (2, store.n_rows, 384)
    np.testing.assert_array_equal(stacked[1].numpy(), store.layer(6).astype(np.float32))


def test_rewriting_a_finished_store_returns_it(store, minilm):
    before = store.layer(3).copy()
    again = ftlens.store.write(minilm, SENTENCES, store.path, rows="words", shard_size=8, progress=False)
    np.testing.assert_array_equal(again.layer(3), before)


def test_folder_of_another_data_set_is_refused(store, minilm):
    refused = r"a store with other settings \(\['data_fingerprint', 'n_inputs'\] differ\)"
    with pytest.raises(ValueError, match=refused):
        ftlens.store.write(minilm, SENTENCES[:10], store.path, rows="words", shard_size=8, progress=False)


def test_open_errors(tmp_path, store):
    with pytest.raises(FileNotFoundError, match="not an activation store"):
        ftlens.store.read(tmp_path)
    with pytest.raises(IndexError, match="out of range"):
        store.layer(7)
    with pytest.raises(ValueError, match="dtype must be one of"):
        ftlens.store.write("minilm", ["a"], tmp_path / "x", dtype="int8")


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_killed_write_resumes_to_an_identical_store(tmp_path):
    run = lambda path, *flags: subprocess.run([sys.executable, str(WRITER), str(path), *flags],  # noqa: E731
                                              check=True, timeout=300)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    run(whole)

    proc = subprocess.Popen([sys.executable, str(WRITER), str(resumed), "--slow"])
    manifest = resumed / "manifest.json"
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists():
            done = json.loads(manifest.read_text())["shards_done"]
            if done >= 2:
                break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    state = json.loads(manifest.read_text())
    assert 2 <= state["shards_done"] < len(state["shard_rows"]) and not state["complete"]
    with pytest.raises(ValueError, match="incomplete .* rerun ftlens.store.write"):
        ftlens.store.read(resumed)

    run(resumed)
    assert _files(resumed) == _files(whole)


def test_store_of_sentence_pairs_carries_their_label(tmp_path, minilm):
    pairs = generate_pairs(12, seed=3)
    store = ftlens.store.write(minilm, pairs, tmp_path / "pairs", dtype="float32", rows="mean",
                               segment=1, progress=False)
    assert store.n_rows == 12 and store.layer(0).dtype == np.float32
    codes, vocab = store.labels("label")
    assert [vocab[c] for c in codes] == [p.label for p in pairs]
    assert store.rows[:, 0].tolist() == list(range(12))


def _copy(store, tmp_path) -> Path:
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(store.path, target)
    return target


def _rewrite(minilm, path):
    return ftlens.store.write(minilm, SENTENCES, path, rows="words", shard_size=8, progress=False)


@pytest.mark.parametrize("damage", ["truncate layer", "delete layer", "delete rows", "delete label",
                                    "wrong dtype"])
def test_damaged_files_are_named_on_open_and_rebuilt_on_rerun(store, minilm, tmp_path, damage):
    path = _copy(store, tmp_path)
    target = {"truncate layer": "layer_02.npy", "delete layer": "layer_05.npy", "delete rows": "rows.npy",
              "delete label": "labels/upos.npy", "wrong dtype": "layer_01.npy"}[damage]
    file = path / target
    if damage == "truncate layer":
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    elif damage == "wrong dtype":
        np.save(file, np.zeros((store.n_rows, store.dim), dtype=np.float32))
    else:
        file.unlink()
    with pytest.raises(ValueError, match=f"{target}: .*Rerun ftlens.store.write"):
        ftlens.store.read(path)
    rebuilt = _rewrite(minilm, path)
    assert _files(path) == _files(store.path)
    assert rebuilt.layer(2).shape == (store.n_rows, store.dim)


def test_a_damaged_shard_is_rewritten_on_resume_and_found_by_verify(store, minilm, tmp_path):
    path = _copy(store, tmp_path)
    layer = np.load(path / "layer_03.npy", mmap_mode="r+")
    layer[5:9] = 0  # the first shard's rows, same file size
    layer.flush()
    del layer
    with pytest.raises(ValueError, match=r"layer_03.npy: shard 0 .* does not match its checksum"):
        ftlens.store.read(path).verify()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["complete"] = False  # as after an interrupted run: the rerun resumes and checks
    (path / "manifest.json").write_text(json.dumps(manifest))
    _rewrite(minilm, path).verify()
    assert _files(path) == _files(store.path)


def test_damaged_manifest_is_named(store, tmp_path):
    path = _copy(store, tmp_path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"manifest.json is damaged .* delete the folder"):
        ftlens.store.read(path)
    (path / "manifest.json").write_text(json.dumps({"format": "ftlens-store-2", "n_rows": 3}))
    with pytest.raises(ValueError, match=r"manifest.json lacks n_layers, dim"):
        ftlens.store.read(path)
    (path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a store manifest"):
        ftlens.store.read(path)


def test_files_get_the_users_mode_and_a_read_only_finished_store_is_returned(store, minilm, tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in store.path.rglob("*.npy")}
    assert modes == {0o666 & ~mask}
    path = _copy(store, tmp_path)
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        again = _rewrite(minilm, path)
        np.testing.assert_array_equal(again.layer(4), store.layer(4))
    finally:
        for p in [path, *path.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


def test_a_second_writer_is_refused_while_the_first_writes(tmp_path):
    path = tmp_path / "busy"
    proc = subprocess.Popen([sys.executable, str(WRITER), str(path), "--slow"])
    try:
        deadline = time.time() + 120
        while not (path / "manifest.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(RuntimeError, match="another process is writing a store in"):
            ftlens.store.write("minilm", generate_sentences(96, seed=9), path, rows="words", shard_size=8,
                               batch_size=4, progress=False)
    finally:
        proc.kill()
        proc.wait()


def test_float16_overflow_is_refused_with_the_layer(minilm, tmp_path):
    import copy

    model, tokenizer = minilm
    loud = copy.deepcopy(model)
    loud.embeddings.register_forward_hook(lambda module, args, out: out * 1e6)
    message = r"layer 0 has values up to .* beyond float16's range.*dtype='float32'"
    with pytest.raises(ValueError, match=message):
        ftlens.store.write((loud, tokenizer), SENTENCES[:4], tmp_path / "loud", progress=False)


def test_a_layer_cut_while_it_is_read_is_an_error_not_a_bus_error(minilm, tmp_path):
    store = ftlens.store.write(minilm, SENTENCES, tmp_path / "cut", rows="words", progress=False)
    chunks = store.chunks(chunk_rows=8)
    next(chunks)
    file = tmp_path / "cut" / "layer_03.npy"
    with open(file, "r+b") as f:
        f.truncate(file.stat().st_size // 2)
    with pytest.raises(ValueError, match=r"layer_03.npy changed while it was read: truncated or padded"):
        next(chunks)


def test_a_full_disk_is_one_clear_error_before_any_row_is_written(minilm, tmp_path, monkeypatch):
    """Layer files get their blocks when created: on a full disk that fails at once with the
    space needed, where writing a sparse memmap's pages would end the process (bus error)."""
    import errno
    import os

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match=r"disk holding .* is full: the store's layer_00.npy needs .* GiB more"):
        ftlens.store.write(minilm, SENTENCES, tmp_path / "full", rows="words", progress=False)
    assert not list((tmp_path / "full").glob("layer_*.npy"))
    monkeypatch.undo()
    store = ftlens.store.write(minilm, SENTENCES, tmp_path / "full", rows="words", progress=False)
    assert store.n_rows > 0


def test_a_layer_cut_while_probes_read_it_is_an_error(tmp_path):
    from ftlens.probes.features import ProbeRows

    rng = np.random.default_rng(0)
    store = ftlens.store.from_arrays([rng.normal(size=(300, 4)).astype(np.float32)] * 2,
                                     {"upos": ["a", "b", "c"] * 100}, path=tmp_path / "s")
    chunks = ProbeRows(store, [0, 1], np.arange(300)).chunks(100)
    next(chunks)
    file = tmp_path / "s" / "layer_01.npy"
    with open(file, "r+b") as f:
        f.truncate(file.stat().st_size - 512)
    with pytest.raises(ValueError, match="layer_01.npy changed while it was read"):
        next(chunks)
