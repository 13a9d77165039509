"""Length planning: every input runs once, batches stay within their limits and 5% padding,
and the plan changes which inputs run together, never which rows come out or in what order."""

import ftlens
import numpy as np
import pytest
import torch
from ftlens.activations import align, plan
from ftlens.activations.stream import ActivationStream
from ftlens.data import generate_sentences, read_conllu
from ftlens.similarity.grouped import GroupedMoments

SENTENCES = generate_sentences(60, seed=11)


@pytest.mark.parametrize("seed", range(5))
def test_batches_take_every_input_once_within_their_limits(seed):
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([rng.integers(3, 40, 300), rng.integers(100, 400, 7)])
    batches = plan.length_batches(lengths, batch_size=16, max_batch_tokens=900)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(len(lengths)))
    widths = [lengths[b].max() for b in batches]
    assert widths == sorted(widths)  # shortest first
    for b in batches:
        real, slots = lengths[b].sum(), len(b) * lengths[b].max()
        assert len(b) <= 16
        assert len(b) == 1 or (slots <= 900 and slots - real <= plan.PADDING * real)


def test_equal_lengths_fill_batches_and_keep_input_order():
    batches = plan.length_batches(np.full(10, 7), batch_size=4, max_batch_tokens=1000)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_consecutive_groups_respect_both_bounds():
    groups = plan.consecutive_groups([5, 5, 20, 1, 1, 1], limit=10, max_count=4, counts=[1, 1, 1, 2, 2, 2])
    assert [list(g) for g in groups] == [[0, 1], [2], [3, 4], [5]]
    assert plan.consecutive_groups([], 10) == []


def test_ewt_dev_pads_within_five_percent(data_dir, minilm):
    sentences = read_conllu(data_dir / "ud_en_ewt" / "en_ewt-ud-dev.conllu")[:800]
    stream = ActivationStream([minilm], progress=False)
    lengths = stream.lengths(align.as_items(sentences))
    planned = plan.padded_slots(stream.batches(lengths, within_block=True), lengths)
    # the plan before this one: a length sort inside each block of 256 inputs
    blockwise = sum(plan.padded_slots(plan.length_batches(lengths[a:b], 64, 8192, padding=np.inf),
                                      lengths[a:b]) for a, b in stream.block_bounds(lengths))
    assert planned / lengths.sum() <= 1.05 < 1.5 < blockwise / lengths.sum()


def test_ordered_rows_do_not_depend_on_the_window(minilm):
    options = {"rows": "words", "block_size": 8, "progress": False}
    whole = list(ActivationStream([minilm], **options)(SENTENCES))
    narrow = list(ActivationStream([minilm], **options, window_bytes=1)(SENTENCES))
    assert len(whole) == len(narrow) == 8
    for a, b in zip(whole, narrow, strict=True):
        assert np.array_equal(a.item, b.item) and np.array_equal(a.unit, b.unit)
        assert np.all(np.diff(a.item * 1000 + a.unit) > 0)  # input order
        torch.testing.assert_close(a.states[0], b.states[0], rtol=1e-5, atol=1e-5)
    one = ActivationStream([minilm], rows="words", progress=False).block(align.as_items(SENTENCES[5:6]), 5)
    rows = np.flatnonzero(np.concatenate([c.item for c in whole]) == 5)
    torch.testing.assert_close(torch.cat([c.states[0] for c in whole], 1)[:, rows], one.states[0],
                               rtol=1e-5, atol=1e-5)


def test_a_window_counts_truncation_per_block(minilm):
    texts = [" ".join(["word"] * n) for n in (3, 40, 3, 50, 3, 3)]
    stream = ActivationStream([minilm], rows="words", block_size=2, max_length=20, progress=False)
    chunks = list(stream(texts))
    assert [c.truncated for c in chunks] == [1, 1, 0]
    assert [c.words_dropped for c in chunks] == [40 - 18, 50 - 18, 0]
    assert stream.truncated == 2 and stream.words_dropped == 40 + 50 - 36


def test_ranks_run_exactly_the_chunks_of_one_process(minilm):
    options = {"rows": "tokens", "block_size": 8, "ordered": False, "progress": False}
    one = list(ActivationStream([minilm], **options)(SENTENCES))
    ranks = [list(ActivationStream([minilm], **options)(SENTENCES, shard=(r, 2))) for r in range(2)]
    assert len(one) >= 4 and [len(r) for r in ranks] == [(len(one) + 1) // 2, len(one) // 2]
    for c, chunk in enumerate(one):
        theirs = ranks[c % 2][c // 2]
        assert np.array_equal(theirs.item, chunk.item) and np.array_equal(theirs.unit, chunk.unit)
        torch.testing.assert_close(theirs.states[0], chunk.states[0], rtol=0, atol=0)

    def grouped(chunks):
        moments = GroupedMoments(5, len(SENTENCES), 7, 384, 384, rdms=("correlation",))
        for chunk in chunks:
            moments.update(chunk.states[0], chunk.states[0] ** 2, chunk.item).flush()
        return moments

    merged = grouped(ranks[0]).merge(grouped(ranks[1]))
    single = grouped(one)
    for mine, theirs in zip(merged.groups, single.groups, strict=True):
        np.testing.assert_allclose(mine.cka(), theirs.cka(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(mine.rsa(), theirs.rsa(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="ordered=False to shard"):
        next(ActivationStream([minilm], progress=False)(SENTENCES, shard=(0, 2)))


def test_a_store_written_window_by_window_equals_one_window(minilm, tmp_path):
    kwargs = {"rows": "words", "shard_size": 8, "progress": False, "dtype": "float32"}
    wide = ftlens.store.write(minilm, SENTENCES, tmp_path / "wide", **kwargs)
    narrow = ftlens.store.write(minilm, SENTENCES, tmp_path / "narrow", window_bytes=1, **kwargs)
    assert np.array_equal(wide.rows, narrow.rows) and wide.n_rows == narrow.n_rows
    for layer in range(wide.n_layers):
        np.testing.assert_allclose(wide.layer(layer), narrow.layer(layer), rtol=1e-5, atol=1e-5)
