"""Layer surgery on a Hugging Face encoder (bare, or inside a model with a task head).

The blocks are the encoder's ``nn.ModuleList`` of transformer layers (found as capture
finds them); "the embeddings" are every encoder parameter outside the blocks and the
pooler (word, position and type embeddings, their LayerNorm, ELECTRA's projection).
"""

from __future__ import annotations

import torch

from ..activations.capture import layer_blocks
from ..activations.models import encoder_of

SIDES = ("above", "below")  # which layers a reversion puts back: above k, or up to k


def _check_k(k: int, blocks: torch.nn.ModuleList, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(blocks):
        raise ValueError(f"{what} must be an integer in 0..{len(blocks)} (the model has {len(blocks)} "
                         f"layers), got {k!r}")
    return k


def _pooler(model: torch.nn.Module) -> torch.nn.Module | None:
    pooler = getattr(encoder_of(model), "pooler", None)
    return pooler if isinstance(pooler, torch.nn.Module) else None


def _embedding_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The encoder's parameters outside its layers and pooler, by name."""
    outside = {id(p) for block in layer_blocks(model) for p in block.parameters()}
    pooler = _pooler(model)
    if pooler is not None:
        outside |= {id(p) for p in pooler.parameters()}
    return {name: p for name, p in encoder_of(model).named_parameters() if id(p) not in outside}


def freeze_bottom(model: torch.nn.Module, k: int) -> list[str]:
    """Fixes the embeddings and the bottom ``k`` layers (``requires_grad=False``; the
    optimizer then leaves them bit-identical). k = 0 freezes nothing. Returns the frozen
    parameter names."""
    blocks = layer_blocks(model)
    _check_k(k, blocks, "freeze_bottom")
    if k == 0:
        return []
    chosen = {id(p) for p in _embedding_parameters(model).values()}
    chosen |= {id(p) for block in blocks[:k] for p in block.parameters()}
    frozen = [(name, p) for name, p in encoder_of(model).named_parameters() if id(p) in chosen]
    for _, param in frozen:
        param.requires_grad_(False)
    return [name for name, _ in frozen]


def reinit_top(model: torch.nn.Module, k: int, seed: int = 0) -> None:
    """Re-initializes the top ``k`` layers and the pooler with the model's own initializer
    (``_init_weights``: normal(0, initializer_range) weights, zero biases, unit LayerNorms),
    drawn with ``seed`` (Zhang et al. 2021). k = 0 changes nothing."""
    blocks = layer_blocks(model)
    _check_k(k, blocks, "reinit_top")
    if k == 0:
        return
    initializer = getattr(encoder_of(model), "_init_weights", None)
    if initializer is None:
        raise ValueError(f"{type(model).__name__} has no _init_weights: reinit_top needs a Hugging Face "
                         "PreTrainedModel, whose initializer it reuses")
    targets = list(blocks[len(blocks) - k :])
    pooler = _pooler(model)
    if pooler is not None:
        targets.append(pooler)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            for target in targets:
                # transformers >= 5 skips tensors marked initialized (as loaded ones are)
                for item in (*target.modules(), *target.parameters()):
                    if hasattr(item, "_is_hf_initialized"):
                        item._is_hf_initialized = False
                target.apply(initializer)
    finally:
        torch.random.set_rng_state(state)


def revert_layers(finetuned: torch.nn.Module, base: torch.nn.Module, k: int, side: str = "above") -> None:
    """Puts the base model's weights back into the fine-tuned model's layers above layer
    ``k`` (``side="above"``: layers k+1..L, counting from 1) or up to it (``"below"``: the
    embeddings and layers 1..k), keeping everything else (the task head included)."""
    if side not in SIDES:
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    blocks, base_blocks = layer_blocks(finetuned), layer_blocks(base)
    if len(blocks) != len(base_blocks):
        raise ValueError(f"the fine-tuned model has {len(blocks)} layers and the base model "
                         f"{len(base_blocks)}: revert layers between a model and its own fine-tuned copy")
    _check_k(k, blocks, "k")
    pairs = list(zip(blocks, base_blocks, strict=True))
    chosen = pairs[k:] if side == "above" else pairs[:k]
    if side == "below" and k > 0:
        own, theirs = _embedding_parameters(finetuned), _embedding_parameters(base)
        missing = sorted(set(own) - set(theirs))
        if missing:
            raise ValueError(f"the base model lacks the fine-tuned model's embedding parameters "
                             f"{missing[:3]}")
        with torch.no_grad():
            for name, param in own.items():
                param.copy_(theirs[name])
    for mine, theirs in chosen:
        try:
            mine.load_state_dict(theirs.state_dict())
        except RuntimeError as err:
            raise ValueError(f"the base model's layers do not match the fine-tuned model's: {err}") from None


def _is_norm(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.LayerNorm) or type(module).__name__.endswith(("LayerNorm", "RMSNorm"))


def layer_parameters(model: torch.nn.Module) -> list[dict[str, list[str]]]:
    """Per layer (0: the embeddings, then each block): the names of its parameters in the
    encoder (as ``encoder.named_parameters()`` gives them) by part: the embeddings'
    "embeddings" and "layer_norm"; a block's "attention", "feed_forward" (every other
    weight) and "layer_norm" (its normalization layers, wherever they sit)."""
    encoder = encoder_of(model)
    names = {id(p): name for name, p in encoder.named_parameters()}
    norms = {id(p) for m in encoder.modules() if _is_norm(m) for p in m.parameters(recurse=False)}
    embeddings: dict[str, list[str]] = {"embeddings": [], "layer_norm": []}
    for name, p in _embedding_parameters(model).items():
        embeddings["layer_norm" if id(p) in norms else "embeddings"].append(name)
    out = [embeddings]
    for block in layer_blocks(model):
        parts: dict[str, list[str]] = {"attention": [], "feed_forward": [], "layer_norm": []}
        for inner, p in block.named_parameters():
            attention = any(w in inner.lower() for w in ("attention", "attn"))
            part = "layer_norm" if id(p) in norms else "attention" if attention else "feed_forward"
            parts[part].append(names[id(p)])
        out.append(parts)
    return out
