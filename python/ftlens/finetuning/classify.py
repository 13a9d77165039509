"""Sentence and sentence-pair classification (SST-2; NLI, RTE): [CLS] -> optional
normalization (cls_norm, IsoBN) -> dropout -> linear, as in the paper."""

from __future__ import annotations

from collections import Counter

import numpy as np
from torch import nn

from ..data.pairs import PairData, SentencePair, read_pairs
from . import norms
from .model import TaskModel
from .task import Encoded, ExampleScores, FinetuneTask, label_index


class Classifier(TaskModel):
    """Logits [batch, labels] from the [CLS] vector of the last layer."""

    kind = "classifier"

    def __init__(self, encoder: nn.Module, labels: list[str], dropout: float, cls_norm: str | None = None,
                 isobn: bool = False):
        super().__init__(encoder, labels=list(labels), dropout=dropout, cls_norm=cls_norm, isobn=isobn)
        self.norm = norms.cls_norm(cls_norm, self.hidden_size)
        self.isobn = norms.IsoBN(self.hidden_size) if isobn else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.hidden_size, len(labels))
        self.init_linear(self.classifier)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None) -> dict:
        cls = self.encode(input_ids, attention_mask, token_type_ids)[:, 0]
        logits = self.classifier(self.dropout(self.isobn(self.norm(cls))))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class Classification(FinetuneTask):
    metric = "accuracy"
    own_options = ("cls_norm", "isobn")

    def __init__(self, name: str, pairs: bool):
        self.name, self.pairs = name, pairs
        self.data = "ftlens.data.read_pairs of a file with " + (
            "premise and hypothesis columns" if pairs else "a sentence column")

    def check(self, train, evaluation, opts) -> dict:
        self.check_options(opts)
        for role, data in (("train", train), ("eval", evaluation)):
            if isinstance(data, PairData):
                data = data.pairs
            self.check_list(role, data, SentencePair)
            if any(p.label is None for p in data):
                raise ValueError(f"the {role} examples are unlabeled; fine-tuning needs gold labels")
            if any((p.hypothesis is None) == self.pairs for p in data):
                other = "sentence" if self.pairs else "pair"
                raise ValueError(f"the {role} data are {'single sentences' if self.pairs else 'pairs'}: "
                                 f"use task {other!r} for them")
        seen = {p.label for p in train}
        if len(seen) < 2 and train is not evaluation:  # (evaluate() checks one set's form as both)
            raise ValueError(f"every train example has the label {next(iter(seen))!r}: a classifier of one "
                             "class scores 100% on anything and learns nothing; give examples of at least "
                             "two labels")
        unseen = sorted({p.label for p in evaluation} - seen)
        if unseen:
            count = sum(p.label in unseen for p in evaluation)
            raise ValueError(f"{count} eval examples have labels the training examples never have "
                             f"({unseen}); the model could not predict them: drop them or add training "
                             "examples with them")
        return {"labels": sorted(seen), "cls_norm": opts.cls_norm, "isobn": opts.isobn}

    def model(self, encoder, head: dict) -> Classifier:
        return Classifier(encoder, dropout=encoder.config.hidden_dropout_prob, **head)

    def dataset(self, data, tokenizer, opts, head: dict, train: bool) -> Encoded:
        index = label_index(head["labels"], {p.label for p in data}, "labels")
        second = [p.hypothesis for p in data] if self.pairs else None
        features = tokenizer([p.premise for p in data], second, truncation=True, max_length=opts.max_length)
        encoded = Encoded([{**{k: v[i] for k, v in features.items()}, "labels": index[p.label]}
                           for i, p in enumerate(data)])
        encoded.labels = head["labels"]
        return encoded

    def collator(self, tokenizer):
        import transformers

        return transformers.DataCollatorWithPadding(tokenizer)

    def scores(self, prediction, eval_set, opts) -> ExampleScores:
        logits, labels = prediction
        predicted = np.argmax(logits, -1)
        right = (predicted == labels).astype(np.float64)
        answers = [eval_set.labels[i] for i in predicted.tolist()]
        ones = np.ones_like(right)
        return ExampleScores({"accuracy": float(right.mean())}, 1.0, {"accuracy": right}, {"accuracy": ones},
                             answers)

    def read(self, path) -> PairData:
        return read_pairs(path)

    def baseline(self, evaluation, opts) -> dict:
        """The majority class of the eval set (at least 1 / number of classes)."""
        labels = [p.label for p in (evaluation.pairs if isinstance(evaluation, PairData) else evaluation)]
        label, count = Counter(labels).most_common(1)[0]
        return {"value": count / len(labels), "rule": f"always the majority class {label!r}",
                "n": len(labels)}


SENTENCE = Classification("sentence", pairs=False)
PAIR = Classification("pair", pairs=True)
