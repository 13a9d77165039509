"""Fine-tuning support: layer surgery for the paper's ablations and the related papers'
methods (freeze the bottom k layers, re-initialize the top k, revert layers to the base
model's weights) and Adam with optional bias correction."""

from .layers import freeze_bottom, reinit_top, revert_layers
from .optim import Adam

__all__ = ["Adam", "freeze_bottom", "reinit_top", "revert_layers"]
