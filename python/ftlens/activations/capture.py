"""Forward hooks that capture the embedding output and every layer output of an encoder.

The layer blocks are found from the model's structure: the longest ``nn.ModuleList`` of
blocks of one class (``encoder.layer`` in BERT, ``transformer.layer`` in DistilBERT, ...),
so no per-architecture name lists are needed. The embedding output is the input of the
first block (after any embedding projection, as in ELECTRA), which is what
``output_hidden_states[0]`` reports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

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


def short_layer_names(layers: list[str]) -> list[str]:
    """Tick labels of layer names: "emb", "1", "2", ..."""
    return ["emb" if name == "embeddings" else name.replace("layer", "").strip(" _") for name in layers]


class LayerCapture(contextlib.AbstractContextManager):
    """Hooks on an encoder; each forward pass fills ``self.states`` with
    ``n_blocks + 1`` tensors [batch, tokens, hidden] (embedding output first).

    With ``sink``, each state is handed to ``sink(index, state)`` as soon as the forward
    pass produces it and is not kept, so a layer's output can be freed once the next block
    has run (``take()`` then returns an empty list).

    Example::

        with LayerCapture(model) as cap:
            model(**batch)
        states = cap.take()
    """

    def __init__(self, model: torch.nn.Module,
                 sink: Callable[[int, torch.Tensor], None] | None = None) -> None:
        self.blocks = layer_blocks(model)
        self.states: list[torch.Tensor | None] = []
        self._sink = sink
        self._arrived: list[bool] = []
        self._handles = []

    def _arrive(self, index: int, state: torch.Tensor) -> None:
        if self._sink is None:
            self.states[index] = state
        else:
            self._sink(index, state)
        self._arrived[index] = True

    def __enter__(self) -> LayerCapture:
        n = len(self.blocks)

        def first_input(module, args, kwargs):
            hidden = args[0] if args else kwargs.get("hidden_states", kwargs.get("x"))
            self.states, self._arrived = [None] * (n + 1), [False] * (n + 1)
            self._arrive(0, hidden)

        def output_of(index):
            def hook(module, args, output):
                self._arrive(index + 1, output[0] if isinstance(output, (tuple, list)) else output)

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
        """The captured states of the last forward pass (cleared afterwards; empty with a
        sink). Raises when the pass did not reach every layer block."""
        states, arrived = self.states, self._arrived
        self.states, self._arrived = [], []
        if not arrived or not all(arrived):
            raise RuntimeError("the hooked forward pass did not run every layer block")
        return [] if self._sink is not None else states
