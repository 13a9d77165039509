"""Layer surgery on a Hugging Face encoder (bare, or inside a model with a task head).

The blocks are the encoder's ``nn.ModuleList`` of transformer layers (found as capture
finds them); "the embeddings" are every encoder parameter outside the blocks and the
pooler (word, position and type embeddings, their LayerNorm, ELECTRA's projection).
"""

from __future__ import annotations

import torch

from ..capture import layer_blocks
from ..models import encoder_of


def _check_k(k: int, blocks: torch.nn.ModuleList, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(blocks):
        raise ValueError(f"{what} must be an integer in 0..{len(blocks)} (the model has {len(blocks)} "
                         f"layers), got {k!r}")
    return k


def _pooler(model: torch.nn.Module) -> torch.nn.Module | None:
    pooler = getattr(encoder_of(model), "pooler", None)
    return pooler if isinstance(pooler, torch.nn.Module) else None


def freeze_bottom(model: torch.nn.Module, k: int) -> list[str]:
    """Fixes the embeddings and the bottom ``k`` layers (``requires_grad=False``; the
    optimizer then leaves them bit-identical). k = 0 freezes nothing. Returns the frozen
    parameter names."""
    blocks = layer_blocks(model)
    _check_k(k, blocks, "freeze_bottom")
    if k == 0:
        return []
    trainable = {id(p) for block in blocks[k:] for p in block.parameters()}
    pooler = _pooler(model)
    if pooler is not None:
        trainable |= {id(p) for p in pooler.parameters()}
    frozen = []
    encoder = encoder_of(model)
    for name, param in encoder.named_parameters():
        if id(param) not in trainable:
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def reinit_top(model: torch.nn.Module, k: int, seed: int = 0) -> None:
    """Re-initializes the top ``k`` layers and the pooler with the model's own initializer
    (``_init_weights``: normal(0, initializer_range) weights, zero biases, unit LayerNorms),
    drawn with ``seed`` (Zhang et al. 2021). k = 0 changes nothing."""
    blocks = layer_blocks(model)
    _check_k(k, blocks, "reinit_top")
    if k == 0:
        return
    initializer = getattr(model, "_init_weights", None)
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
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    blocks, base_blocks = layer_blocks(finetuned), layer_blocks(base)
    if len(blocks) != len(base_blocks):
        raise ValueError(f"the fine-tuned model has {len(blocks)} layers and the base model "
                         f"{len(base_blocks)}: revert layers between a model and its own fine-tuned copy")
    _check_k(k, blocks, "k")
    pairs = list(zip(blocks, base_blocks, strict=True))
    chosen = pairs[k:] if side == "above" else pairs[:k]
    if side == "below" and k > 0:
        in_blocks = {id(p) for block in blocks for p in block.parameters()}
        pooler = _pooler(finetuned)
        if pooler is not None:
            in_blocks |= {id(p) for p in pooler.parameters()}
        embeddings = [name for name, p in encoder_of(finetuned).named_parameters() if id(p) not in in_blocks]
        base_params = dict(encoder_of(base).named_parameters())
        missing = [name for name in embeddings if name not in base_params]
        if missing:
            raise ValueError(f"the base model lacks the fine-tuned model's embedding parameters "
                             f"{missing[:3]}")
        with torch.no_grad():
            own = dict(encoder_of(finetuned).named_parameters())
            for name in embeddings:
                own[name].copy_(base_params[name])
    for mine, theirs in chosen:
        try:
            mine.load_state_dict(theirs.state_dict())
        except RuntimeError as err:
            raise ValueError(f"the base model's layers do not match the fine-tuned model's: {err}") from None
