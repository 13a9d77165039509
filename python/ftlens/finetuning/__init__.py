"""Fine-tuning: ``finetune`` on the Hugging Face Trainer for sentence and pair
classification, dependency parsing and extractive QA; the layer surgery behind the
paper's ablations and the related papers' methods (freeze the bottom k layers,
re-initialize the top k, revert layers to the base model's weights), with Adam whose bias
correction can be turned off; ``load_task_model`` and ``evaluate`` for saved models; one
run per seed of a procedure (``finetune(..., seeds=...)``, ``SeedRuns``); what the layers
do while a run trains (``finetune(..., track=...)``, ``TrackLayers``, ``Trajectory``)."""

from .ablate import KINDS, AblationResult, ablate
from .api import finetune
from .divergence import FinetuneDiverged
from .layers import SIDES, freeze_bottom, reinit_top, revert_layers
from .model import TaskModel, load_task_model
from .norms import IsoBN
from .optim import Adam
from .options import FinetuneOptions
from .run import TASKS, FinetuneResult, evaluate
from .seeds import SeedRuns, finetune_seeds
from .tracking import TrackLayers, TrackOptions, load_trajectory
from .trajectory import Trajectory, plot_trajectories

__all__ = ["KINDS", "SIDES", "TASKS", "AblationResult", "Adam", "FinetuneDiverged", "FinetuneOptions",
           "FinetuneResult", "IsoBN", "SeedRuns", "TaskModel", "TrackLayers", "TrackOptions", "Trajectory",
           "ablate", "evaluate", "finetune", "finetune_seeds", "freeze_bottom", "load_task_model",
           "load_trajectory", "plot_trajectories", "reinit_top", "revert_layers"]
