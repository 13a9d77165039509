"""Layer surgery for the ablations and the seed papers' methods, on the packaged MiniLM
with a classification head: what changes is exactly what was asked, bit for bit."""

import pytest
import torch
from ftlens.activations.capture import layer_blocks
from ftlens.activations.models import packaged_minilm_path
from ftlens.finetuning import Adam, freeze_bottom, reinit_top, revert_layers


def _classifier(seed=0):
    import transformers

    transformers.logging.set_verbosity_error()  # the new head's "newly initialized" notice
    torch.manual_seed(seed)
    auto = transformers.AutoModelForSequenceClassification
    return auto.from_pretrained(packaged_minilm_path(), num_labels=3)


def _state(model):
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _changed(before, model):
    return {name for name, value in model.state_dict().items() if not torch.equal(before[name], value)}


def test_freeze_bottom_keeps_embeddings_and_bottom_layers_bit_identical():
    model = _classifier()
    frozen = freeze_bottom(model, 2)
    assert frozen and all(".layer.0." in n or ".layer.1." in n or n.startswith("embeddings.") for n in frozen)
    assert any(n.startswith("embeddings.") for n in frozen)
    before = _state(model)
    optimizer = Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.01)
    batch = torch.randint(1000, 2000, (4, 12))
    for _ in range(2):
        model(input_ids=batch, labels=torch.tensor([0, 1, 2, 1])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = _changed(before, model)
    assert changed and not any(".layer.0." in n or ".layer.1." in n or ".embeddings." in n for n in changed)
    assert any(".layer.5." in n for n in changed) and any(n.startswith("classifier.") for n in changed)
    assert freeze_bottom(_classifier(), 0) == []


def test_reinit_top_redraws_only_the_top_layers_and_pooler_from_the_initializer():
    model = _classifier()
    before = _state(model)
    reinit_top(model, 2, seed=3)
    changed = _changed(before, model)
    assert {n.split(".layer.")[1].split(".")[0] for n in changed if ".layer." in n} == {"4", "5"}
    assert any(".pooler." in n for n in changed)
    assert not any(".embeddings." in n or n.startswith("classifier.") for n in changed)
    top = layer_blocks(model)[-1]
    weight = top.intermediate.dense.weight
    assert abs(weight.std().item() - model.config.initializer_range) < 0.002
    assert abs(weight.mean().item()) < 1e-3
    assert torch.all(top.output.dense.bias == 0) and torch.all(top.output.LayerNorm.weight == 1)
    again = _classifier()
    reinit_top(again, 2, seed=3)
    mine, theirs = model.state_dict(), again.state_dict()
    assert all(torch.equal(mine[name], theirs[name]) for name in mine)


@pytest.mark.parametrize("side", ["above", "below"])
def test_revert_puts_base_weights_back_on_one_side_and_keeps_the_head(side):
    base, tuned = _classifier(0), _classifier(1)
    with torch.no_grad():  # a stand-in for fine-tuning: every weight moved
        for p in tuned.parameters():
            p.add_(0.01)
    tuned_state = _state(tuned)
    revert_layers(tuned, base, 4, side)
    base_state = base.state_dict()
    for name, value in tuned.state_dict().items():
        layer = int(name.split(".layer.")[1].split(".")[0]) if ".layer." in name else None
        reverted = (layer is not None and layer >= 4) if side == "above" else \
            (layer is not None and layer < 4) or ".embeddings." in name
        want = base_state[name] if reverted else tuned_state[name]
        assert torch.equal(value, want), name


def test_bad_layer_counts_and_models():
    model = _classifier()
    for call in (lambda: freeze_bottom(model, 7), lambda: reinit_top(model, -1),
                 lambda: freeze_bottom(model, 2.0)):
        with pytest.raises(ValueError, match=r"in 0\.\.6 \(the model has 6 layers\)"):
            call()
    with pytest.raises(ValueError, match="found no list of transformer blocks"):
        freeze_bottom(torch.nn.Sequential(torch.nn.Linear(2, 2)), 1)
    small = torch.nn.Module()
    small.base_model = torch.nn.Module()
    small.base_model.layers = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    with pytest.raises(ValueError, match="6 layers and the base model 3"):
        revert_layers(model, small, 1)
    with pytest.raises(ValueError, match="side must be 'above' or 'below'"):
        revert_layers(model, _classifier(), 1, side="top")


def test_adam_equals_torch_adamw_and_drops_bias_correction_on_request():
    torch.manual_seed(0)
    start = torch.randn(5, 3)
    grads = [torch.randn(5, 3) for _ in range(4)]
    runs = {}
    for name, make in (("ours", lambda p: Adam([p], lr=0.1, weight_decay=0.01)),
                       ("torch", lambda p: torch.optim.AdamW([p], lr=0.1, weight_decay=0.01)),
                       ("bert", lambda p: Adam([p], lr=0.1, weight_decay=0.01, bias_correction=False))):
        p = torch.nn.Parameter(start.clone())
        optimizer = make(p)
        for g in grads:
            p.grad = g.clone()
            optimizer.step()
        runs[name] = p.detach()
    torch.testing.assert_close(runs["ours"], runs["torch"], rtol=1e-6, atol=1e-7)
    # without bias correction, by hand (float64)
    p, m, v = start.double(), torch.zeros(5, 3, dtype=torch.float64), torch.zeros(5, 3, dtype=torch.float64)
    for g in grads:
        g = g.double()
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        p = p * (1 - 0.1 * 0.01) - 0.1 * m / (v.sqrt() + 1e-8)
    torch.testing.assert_close(runs["bert"].double(), p, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(runs["bert"], runs["ours"])
    with pytest.raises(ValueError, match="invalid Adam settings"):
        Adam([torch.nn.Parameter(start)], betas=(0.9, 1.0))
