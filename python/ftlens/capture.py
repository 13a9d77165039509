"""Forward hooks that capture the embedding output and every layer output of an encoder.

The layer blocks are found from the model's structure: the longest ``nn.ModuleList`` of
blocks of one class (``encoder.layer`` in BERT, ``transformer.layer`` in DistilBERT, ...),
so no per-architecture name lists are needed. The embedding output is the input of the
first block (after any embedding projection, as in ELECTRA), which is what
``output_hidden_states[0]`` reports.
"""

from __future__ import annotations

import contextlib

import torch

from .models import encoder_of


def layer_blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The encoder's list of transformer blocks."""
    best = None
    for module in encoder_of(model).modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        if len({type(block) for block in module}) != 1:
            continue
        if not any(True for _ in module[0].parameters()):
            continue
        if best is None or len(module) > len(best):
            best = module
    if best is None:
        raise ValueError(
            f"found no list of transformer blocks in {type(model).__name__}; ftlens captures "
            "encoders whose layers sit in an nn.ModuleList (BERT, RoBERTa, DistilBERT, ELECTRA, "
            "DeBERTa, MiniLM, ...)"
        )
    return best


def n_hidden_states(model: torch.nn.Module) -> int:
    """Captured layers: the embedding output plus one per block."""
    return len(layer_blocks(model)) + 1


def layer_names(n_states: int) -> list[str]:
    """Names of the captured hidden states: "embeddings", "layer 1", ..."""
    return ["embeddings"] + [f"layer {i}" for i in range(1, n_states)]


class LayerCapture(contextlib.AbstractContextManager):
    """Hooks on an encoder; each forward pass fills ``self.states`` with
    ``n_blocks + 1`` tensors [batch, tokens, hidden] (embedding output first).

    Example::

        with LayerCapture(model) as cap:
            model(**batch)
        states = cap.states
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.blocks = layer_blocks(model)
        self.states: list[torch.Tensor | None] = []
        self._handles = []

    def __enter__(self) -> LayerCapture:
        n = len(self.blocks)

        def first_input(module, args, kwargs):
            hidden = args[0] if args else kwargs.get("hidden_states", kwargs.get("x"))
            self.states = [None] * (n + 1)
            self.states[0] = hidden

        def output_of(index):
            def hook(module, args, output):
                self.states[index + 1] = output[0] if isinstance(output, (tuple, list)) else output

            return hook

        self._handles.append(self.blocks[0].register_forward_pre_hook(first_input, with_kwargs=True))
        for i, block in enumerate(self.blocks):
            self._handles.append(block.register_forward_hook(output_of(i)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def take(self) -> list[torch.Tensor]:
        """The captured states of the last forward pass (cleared afterwards)."""
        states, self.states = self.states, []
        if not states or any(s is None for s in states):
            raise RuntimeError("the hooked forward pass did not run every layer block")
        return states
