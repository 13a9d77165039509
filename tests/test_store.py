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
from ftlens.data import generate_pairs, generate_sentences
from ftlens.stream import ActivationStream, Chunk

WRITER = Path(__file__).with_name("store_writer.py")
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
    assert set(store.label_names()) == {"upos", "xpos", "deprel", "head"}
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
    with pytest.raises(ValueError, match="different data_fingerprint"):
        ftlens.store.write(minilm, SENTENCES[:10], store.path, rows="words", shard_size=8, progress=False)


def test_open_errors(tmp_path, store):
    with pytest.raises(FileNotFoundError, match="not an activation store"):
        ftlens.store.open(tmp_path)
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
        ftlens.store.open(resumed)

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
