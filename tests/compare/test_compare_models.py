"""compare_models: identity gives 1, re-initialized top layers drop, and the streamed
values equal the functional API on output_hidden_states."""

import copy
import json

import ftlens
import numpy as np
import pytest
import torch
from ftlens.activations import align
from ftlens.activations.capture import layer_blocks
from ftlens.activations.stream import ActivationStream
from ftlens.compare.models import LayerComparison
from ftlens.data import generate_pairs, generate_sentences
from helpers import reference as ref

SENTENCES = [" ".join(s.words) for s in generate_sentences(120, seed=5)]


@pytest.fixture(scope="module")
def reinit_top2(minilm):
    model, tokenizer = minilm
    copy_ = copy.deepcopy(model)
    torch.manual_seed(0)
    for block in list(layer_blocks(copy_))[-2:]:
        block.apply(copy_._init_weights)
    return copy_, tokenizer


def test_model_against_itself_is_one_everywhere(minilm):
    result = ftlens.compare_models(minilm, minilm, SENTENCES, progress=False)
    assert result.cka.shape == result.rsa.shape == (7,)
    np.testing.assert_allclose(result.cka, 1.0, atol=1e-6)
    np.testing.assert_allclose(result.rsa, 1.0, atol=1e-6)
    assert result.n_inputs == 120 and result.n_rows > 120 and result.layers[0] == "embeddings"


def test_reinitialized_top_layers_drop_only_at_and_above(minilm, reinit_top2):
    result = ftlens.compare_models(minilm, reinit_top2, SENTENCES, measures=("cka", "rsa", "cka_debiased"),
                                   progress=False)
    for values in (result.cka, result.rsa, result.cka_debiased):
        np.testing.assert_allclose(values[:5], 1.0, atol=1e-6)  # embeddings .. layer 4 untouched
        assert (values[5:] < 0.99).all()


def test_streamed_values_equal_functional_api_on_hidden_states(minilm, reinit_top2):
    model, tokenizer = minilm
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    mask = enc["attention_mask"].bool()
    with torch.no_grad():
        xs = [h[mask] for h in model(**enc, output_hidden_states=True).hidden_states]
        ys = [h[mask] for h in reinit_top2[0](**enc, output_hidden_states=True).hidden_states]
    result = ftlens.compare_models(minilm, reinit_top2, SENTENCES, measures=("cka", "rsa", "procrustes"),
                                   progress=False)
    assert result.n_rows == int(mask.sum())
    for layer in range(7):
        x, y = xs[layer].double().numpy(), ys[layer].double().numpy()
        assert result.cka[layer] == pytest.approx(ftlens.cka(x, y), abs=1e-6)
        assert result.rsa[layer] == pytest.approx(ftlens.rsa(x, y), abs=1e-6)
        assert result.procrustes[layer] == pytest.approx(ftlens.procrustes(x, y), abs=1e-5)


def test_all_pairs_words_and_sentence_pairs(minilm, reinit_top2):
    pairs = generate_pairs(48, seed=2)
    result = ftlens.compare_models(minilm, reinit_top2, pairs, measures=("cka",), pairs="all",
                                   rows="words", word_pool="mean", segment=1, progress=False)
    assert result.cka.shape == (7, 7)
    np.testing.assert_allclose(np.diag(result.cka)[:5], 1.0, atol=1e-6)
    hypothesis_words = sum(len(p.hypothesis.split()) for p in pairs)
    assert result.n_rows == hypothesis_words


def test_stream_rows_are_in_input_order(minilm):
    stream = ActivationStream([minilm], rows="words", block_size=7, progress=False)
    chunks = list(stream(SENTENCES[:20]))
    item = np.concatenate([c.item for c in chunks])
    unit = np.concatenate([c.unit for c in chunks])
    expected = [(i, w) for i, s in enumerate(SENTENCES[:20]) for w in range(len(s.split()))]
    assert list(zip(item.tolist(), unit.tolist(), strict=True)) == expected


def test_truncation_is_counted(minilm):
    long = " ".join(["word"] * 40)
    with pytest.warns(UserWarning, match=r"1 of 2 inputs were longer than 16 tokens .* \(26 words lost\)"):
        result = ftlens.compare_models(minilm, minilm, [long, "short one"], rows="words", max_length=16,
                                       measures=("cka",), progress=False)
    assert result.truncated == 1 and result.words_dropped == 40 - 14


def test_cls_rows_leave_the_constant_embedding_layer_undefined(tmp_path, minilm, reinit_top2):
    with pytest.warns(UserWarning, match=r"undefined \(NaN\): cka at \[0\]; rsa at \[0\] \(layers\)"):
        result = ftlens.compare_models(minilm, reinit_top2, SENTENCES, measures=("cka", "rsa"), rows="cls",
                                       progress=False)
    assert result.n_rows == len(SENTENCES)
    assert np.isnan(result.cka[0]) and np.isnan(result.rsa[0])  # [CLS] + position 0: same for all
    assert result.undefined == {"cka": [0], "rsa": [0]}
    np.testing.assert_allclose(result.cka[1:5], 1.0, atol=1e-6)
    result.save(tmp_path / "cls.json")
    assert json.loads((tmp_path / "cls.json").read_text())["cka"][0] is None  # standard JSON
    assert np.isnan(LayerComparison.load(tmp_path / "cls.json").cka[0])


def test_cls_rows_with_every_measure_keep_the_pass(minilm, reinit_top2):
    # The CCA family and Procrustes are undefined at the constant layer as well: NaN there,
    # values elsewhere, no exception after the streaming pass.
    measures = ("cka", "cca", "svcca", "pwcca", "procrustes")
    with pytest.warns(UserWarning, match=r"undefined \(NaN\): cka at \[0\]; cca at \[0\]; svcca at \[0\]"):
        result = ftlens.compare_models(minilm, reinit_top2, SENTENCES, measures=measures, rows="cls",
                                       progress=False)
    for name in measures:
        values = getattr(result, name)
        assert np.isnan(values[0]) and np.isfinite(values[1:]).all(), name
    assert result.undefined == {name: [0] for name in measures}


def test_result_round_trips_through_json(tmp_path, minilm):
    result = ftlens.compare_models(minilm, minilm, SENTENCES[:30], measures=("cka", "cca"), progress=False)
    result.save(tmp_path / "r.json")
    again = LayerComparison.load(tmp_path / "r.json")
    np.testing.assert_array_equal(again.cka, result.cka)
    np.testing.assert_array_equal(again.cca, result.cca)
    assert again.rsa is None and again.n_rows == result.n_rows


def test_bad_arguments(minilm):
    with pytest.raises(ValueError, match="unknown measure 'bleu'"):
        ftlens.compare_models(minilm, minilm, SENTENCES, measures=("bleu",))
    with pytest.raises(ValueError, match="rows must be one of"):
        ftlens.compare_models(minilm, minilm, SENTENCES, rows="letters")
    with pytest.raises(ValueError, match="segment=1 but the inputs have 1 segment"):
        ftlens.compare_models(minilm, minilm, SENTENCES, segment=1)
    with pytest.raises(ValueError, match="autocast='fp16' needs a GPU"):
        ftlens.compare_models(minilm, minilm, SENTENCES, autocast="fp16")


def test_blocks_bound_their_tokens(minilm):
    stream = ActivationStream([minilm], block_size=5, max_block_tokens=40, progress=False)
    texts = [" ".join(["word"] * n) for n in (3, 30, 3, 3, 3, 3, 60, 2)]
    items = align.as_items(texts)
    lengths = stream.lengths(items)
    bounds = stream.block_bounds(lengths)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(texts)
    assert all(a < b and b == c for (a, b), (c, _) in zip(bounds, bounds[1:], strict=False))
    for a, b in bounds:
        assert b - a <= 5 and (b - a == 1 or lengths[a:b].sum() <= 40)
    chunks = list(stream(texts))
    assert [(c.item.min(), c.item.max() + 1) for c in chunks] == [tuple(b) for b in bounds]


def test_models_with_different_tokenizers_compare_by_words(tmp_path, minilm):
    from helpers.tiny import byte_level_bpe
    from transformers import RobertaConfig, RobertaModel

    tokenizer = byte_level_bpe(SENTENCES, tmp_path)
    torch.manual_seed(0)
    config = RobertaConfig(hidden_size=32, num_hidden_layers=6, num_attention_heads=2, intermediate_size=37,
                           vocab_size=len(tokenizer), pad_token_id=1)
    roberta = RobertaModel(config).eval()
    result = ftlens.compare_models(minilm, (roberta, tokenizer), SENTENCES, measures=("cka", "rsa"),
                                   rows="words", progress=False)
    assert result.n_rows == sum(len(s.split()) for s in SENTENCES)
    # each model alone, pooled by its own tokenizer's words, compared densely in float64
    own = [torch.cat([c.states[0] for c in ActivationStream([m], rows="words", progress=False)(SENTENCES)], 1)
           for m in (minilm, (roberta, tokenizer))]
    for layer in range(7):
        x, y = (o[layer].double().numpy() for o in own)
        assert result.cka[layer] == pytest.approx(ref.cka(x, y), rel=1e-5)
        assert result.rsa[layer] == pytest.approx(ref.rsa(x, y), rel=1e-5)
    with pytest.raises(ValueError, match="rows='tokens' needs the models to share a tokenizer"):
        ftlens.compare_models(minilm, (roberta, tokenizer), SENTENCES, progress=False)


def test_overlapped_compare_models_equals_a_plain_sequential_pass(minilm, reinit_top2):
    # compare_models accumulates each chunk on a worker thread while the next is captured,
    # into recycled buffers, adding each chunk's rows at once: the same chunks in the same
    # order as a plain loop, so equal bits.
    sentences = [" ".join(s.words[:6]) for s in generate_sentences(600, seed=7)]  # 3 blocks of <= 256
    result = ftlens.compare_models(minilm, reinit_top2, sentences, measures=("cka", "rsa"), rows="words",
                                   progress=False)
    stream = ActivationStream([minilm, reinit_top2], rows="words", ordered=False, progress=False)
    moments = ftlens.LayerMoments(7, 384, 384, rdms=("correlation",))
    chunks = 0
    for chunk in stream(sentences):
        moments.update(chunk.states[0], chunk.states[1]).flush()
        chunks += 1
    assert chunks == 3  # the first recycled buffer comes round again
    np.testing.assert_array_equal(result.cka, moments.cka())
    np.testing.assert_array_equal(result.rsa, moments.rsa("correlation"))


def test_recycled_chunks_equal_fresh_ones_in_two_buffers(minilm):
    texts = [f"sentence number {i} has six words" for i in range(24)]
    options = {"rows": "words", "block_size": 4, "ordered": False, "progress": False}
    fresh, recycled = ActivationStream([minilm], **options), ActivationStream([minilm], **options, recycle=2)
    pointers = []
    for want, got in zip(fresh(texts), recycled(texts), strict=True):
        torch.testing.assert_close(got.states[0], want.states[0], rtol=0, atol=0)
        pointers.append(got.states[0].data_ptr())
    assert len(pointers) == 6 and len(set(pointers)) == 2  # two buffers, in turn
    assert pointers[0::2] == [pointers[0]] * 3 and pointers[1::2] == [pointers[1]] * 3
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="recycle is how many blocks' states to cycle through"):
            ActivationStream([minilm], recycle=bad)


def test_a_recycled_buffer_grows_for_a_larger_block(minilm):
    texts = ["short one", "a much longer sentence than the first one by far"]
    stream = ActivationStream([minilm], rows="words", block_size=1, ordered=False, progress=False, recycle=1)
    small, large = (chunk.states[0].clone() for chunk in stream(texts))
    fresh = ActivationStream([minilm], rows="words", block_size=1, progress=False)
    want = [chunk.states[0] for chunk in fresh(texts)]
    torch.testing.assert_close(small, want[0], rtol=0, atol=0)
    torch.testing.assert_close(large, want[1], rtol=0, atol=0)


def test_a_worker_thread_accumulates_only_with_a_core_to_spare(minilm, reinit_top2, monkeypatch):
    """With torch's intra-op threads on every core, chunks are accumulated in line: a worker
    thread could not hide behind the forwards and its OpenMP team would slow them. In line,
    one block's buffers serve every block; with the worker, two take turns. Small blocks
    (many per call) check that no block is overwritten before it is accumulated."""
    from ftlens._util.threads import usable_cores
    from ftlens.compare import models as compare

    cores = usable_cores()
    seen, consume, stream_class = [], compare.consume_overlapped, compare.ActivationStream

    def recorded(items, fn, overlap):
        seen.append(overlap)
        consume(items, fn, overlap=overlap)

    def small_blocks(*args, recycle, **kwargs):
        seen.append(recycle)
        return stream_class(*args, recycle=recycle, max_block_tokens=96, **kwargs)

    monkeypatch.setattr(compare, "consume_overlapped", recorded)
    monkeypatch.setattr(compare, "ActivationStream", small_blocks)
    before, results = torch.get_num_threads(), []
    try:
        for threads in (cores, 1):
            torch.set_num_threads(threads)
            results.append(ftlens.compare_models(minilm, reinit_top2, SENTENCES[:40], progress=False))
    finally:
        torch.set_num_threads(before)
    assert seen == [1, False] + ([2, True] if cores > 1 else [1, False])
    monkeypatch.setattr(compare, "ActivationStream", stream_class)
    one_block = ftlens.compare_models(minilm, reinit_top2, SENTENCES[:40], progress=False)
    for name in ("cka", "rsa"):  # other chunks round float32 products otherwise: about 1e-8
        np.testing.assert_allclose(results[0].values[name], one_block.values[name], rtol=0, atol=1e-6)
        np.testing.assert_allclose(results[0].values[name], results[1].values[name], rtol=0, atol=1e-9)
