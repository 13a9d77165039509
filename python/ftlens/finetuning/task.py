"""What ``finetune`` asks of a task: checked data, a head, tokenized examples, a
collator and the evaluation metrics. One subclass per task kind (classify, parse, qa)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from .model import TaskModel
from .options import FinetuneOptions


class FinetuneTask:
    """``name`` as users pass it; ``metric``: the headline metric (``eval_<metric>``);
    ``label_names``: the batch keys holding gold labels; ``own_options``: the options only
    this task reads (others must keep their defaults); ``data``: what the data must be;
    ``pairs``: whether inputs are two segments (what max_length must leave room for);
    ``percent``: the metric is in percent (else a fraction of 1)."""

    name = ""
    metric = ""
    percent = False
    pairs = False
    label_names: tuple[str, ...] = ("labels",)
    own_options: tuple[str, ...] = ()
    data = ""

    def check(self, train, evaluation, opts: FinetuneOptions) -> dict:
        """Validates the data and options; returns the head's options (JSON values)."""
        raise NotImplementedError

    def model(self, encoder: torch.nn.Module, head: dict) -> TaskModel:
        raise NotImplementedError

    def dataset(self, data, tokenizer, opts: FinetuneOptions, head: dict, train: bool):
        raise NotImplementedError

    def collator(self, tokenizer):
        raise NotImplementedError

    def scores(self, prediction, eval_set, opts: FinetuneOptions) -> ExampleScores:
        """The metrics of an evaluation (the Trainer's EvalPrediction) and each eval
        example's share of them."""
        raise NotImplementedError

    def metrics(self, eval_set, opts: FinetuneOptions) -> Scorer:
        """``compute_metrics`` for the Trainer: EvalPrediction -> {name: value}, keeping the
        last evaluation's per-example scores."""
        return Scorer(lambda prediction: self.scores(prediction, eval_set, opts))

    def read(self, path):
        """The task's data from a file (for the command line)."""
        raise NotImplementedError

    def baseline(self, evaluation, opts: FinetuneOptions) -> dict | None:
        """What a model that learned nothing scores on ``evaluation``, in the metric's unit:
        {"value", "rule" (how it guesses), "n" (the units the metric counts)}; None where
        the task has no such baseline."""
        return None

    def check_options(self, opts: FinetuneOptions) -> None:
        defaults = FinetuneOptions()
        foreign = [f.name for f in dataclasses.fields(opts) if f.name in OPTION_TASKS
                   and f.name not in self.own_options and getattr(opts, f.name) != getattr(defaults, f.name)]
        if foreign:
            which = "; ".join(f"{name} is for {OPTION_TASKS[name]}" for name in foreign)
            raise ValueError(f"option(s) {foreign} do not apply to task {self.name!r} ({which}); leave "
                             "them unset")

    def check_list(self, role: str, data, kind: type) -> None:
        if not isinstance(data, (list, tuple)) or not data or not all(isinstance(x, kind) for x in data):
            raise TypeError(f"task {self.name!r} takes {role} data as a non-empty list of {kind.__name__} "
                            f"({self.data})")


@dataclasses.dataclass
class ExampleScores:
    """An evaluation's ``metrics`` ({name: value}) and each eval example's share of them:
    for every metric, ``num`` and ``den`` [examples] such that the metric of any multiset of
    examples (a bootstrap resample) is ``scale * sum(num) / sum(den)`` over it (accuracy:
    right or not, over 1; LAS: a sentence's right words over its scored words).
    ``predictions``: what the model answered, per example (JSON values)."""

    metrics: dict
    scale: float
    num: dict[str, np.ndarray]
    den: dict[str, np.ndarray]
    predictions: list

    def to_dict(self) -> dict:
        return {"metrics": self.metrics, "scale": self.scale,
                "num": {k: v.tolist() for k, v in self.num.items()},
                "den": {k: v.tolist() for k, v in self.den.items()}, "predictions": self.predictions}

    @classmethod
    def from_dict(cls, d: dict) -> ExampleScores:
        def arrays(named: dict) -> dict[str, np.ndarray]:
            return {k: np.asarray(v, dtype=np.float64) for k, v in named.items()}

        return cls(d["metrics"], d["scale"], arrays(d["num"]), arrays(d["den"]), d["predictions"])


class Scorer:
    """``compute_metrics`` for the Trainer: the metrics of each evaluation, the last one's
    per-example scores kept in ``last``."""

    def __init__(self, score: Callable[[object], ExampleScores]):
        self.score, self.last = score, None

    def __call__(self, prediction) -> dict:
        self.last = self.score(prediction)
        return self.last.metrics


# The options that belong to one kind of task, and which tasks read them.
OPTION_TASKS = {"cls_norm": "sentence, pair", "isobn": "sentence, pair", "decode": "parsing",
                "punctuation": "parsing",
                "doc_stride": "qa", "max_answer_length": "qa"}


def label_index(labels: list[str], values, what: str) -> dict[str, int]:
    """Each of the head's ``labels`` -> its index, once every one of ``values`` is among
    them (labels the head lacks are refused)."""
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise ValueError(f"{what} {unknown} are not among the model's labels {labels}: it could not "
                         "predict them")
    return index


class Encoded(torch.utils.data.Dataset):
    """Tokenized examples: a list of feature dicts."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]
