"""Fine-tuning: ``finetune`` on the Hugging Face Trainer, and the layer surgery behind the
paper's ablations and the related papers' methods (freeze the bottom k layers,
re-initialize the top k, revert layers to the base model's weights), with Adam whose bias
correction can be turned off."""

from .layers import freeze_bottom, reinit_top, revert_layers
from .optim import Adam
from .options import FinetuneOptions
from .run import FinetuneResult, finetune

__all__ = ["Adam", "FinetuneOptions", "FinetuneResult", "finetune", "freeze_bottom", "reinit_top",
           "revert_layers"]
