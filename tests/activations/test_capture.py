"""Hooks capture exactly what output_hidden_states reports, for every architecture."""

import pytest
import torch
from ftlens.activations.capture import LayerCapture, layer_blocks, n_hidden_states
from helpers.tiny import tiny_models

MODELS = tiny_models()


def _padded_batch(vocab=120, lengths=(9, 5, 7), seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return ids, mask


def _assert_hooks_match(model, inputs):
    with torch.no_grad():
        reference = model(**inputs, output_hidden_states=True).hidden_states
        with LayerCapture(model) as capture:
            model(**inputs)
        states = capture.take()
        handed = []  # (index, a copy of the state) in the order the sink got them
        with LayerCapture(model, sink=lambda i, state: handed.append((i, state.clone()))) as capture:
            model(**inputs)
        assert capture.take() == []  # a sink keeps nothing
    assert len(states) == len(reference) == n_hidden_states(model)
    assert [i for i, _ in handed] == list(range(len(reference)))  # each layer as it is produced
    mask = inputs["attention_mask"].bool()
    for layer, (got, sunk, want) in enumerate(zip(states, handed, reference, strict=True)):
        torch.testing.assert_close(got[mask], want[mask], rtol=0, atol=1e-6, msg=f"layer {layer}")
        torch.testing.assert_close(sunk[1][mask], want[mask], rtol=0, atol=1e-6, msg=f"sunk layer {layer}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hooks_equal_output_hidden_states(name):
    ids, mask = _padded_batch()
    _assert_hooks_match(MODELS[name], {"input_ids": ids, "attention_mask": mask})


def test_hooks_equal_output_hidden_states_minilm(minilm):
    model, tokenizer = minilm
    enc = tokenizer(["A short one.", "Fine-tuning changes the top layers of BERT the most, they say."],
                    padding=True, return_tensors="pt")
    _assert_hooks_match(model, dict(enc))


def test_hooks_are_removed_after_the_block():
    model = MODELS["bert"]
    count = lambda: sum(len(b._forward_hooks) + len(b._forward_pre_hooks) for b in layer_blocks(model))  # noqa: E731
    before = count()
    with LayerCapture(model):
        assert count() == before + len(layer_blocks(model)) + 1
    assert count() == before


def test_layer_blocks_found_by_structure():
    assert len(layer_blocks(MODELS["distilbert"])) == 3  # transformer.layer, not encoder.layer
    with pytest.raises(ValueError, match="no list of transformer blocks"):
        layer_blocks(torch.nn.Linear(3, 3))


@pytest.mark.parametrize("sink", [None, lambda index, state: None], ids=["kept", "sink"])
def test_take_without_forward_is_an_error(sink):
    with LayerCapture(MODELS["bert"], sink) as capture, pytest.raises(RuntimeError, match="did not run"):
        capture.take()


def test_a_pass_stopped_early_is_an_error_with_a_sink():
    model = MODELS["bert"]
    blocks = layer_blocks(model)

    def stop(module, args):
        raise KeyboardInterrupt

    ids, mask = _padded_batch()
    handle = blocks[1].register_forward_pre_hook(stop)
    try:
        with LayerCapture(model, lambda index, state: None) as capture:
            with pytest.raises(KeyboardInterrupt):
                model(input_ids=ids, attention_mask=mask)
            with pytest.raises(RuntimeError, match="did not run"):
                capture.take()
    finally:
        handle.remove()
