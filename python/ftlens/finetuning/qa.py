"""Extractive question answering (SQuAD v1.1): start and end logits over the context's
tokens. Long contexts are cut into windows of max_length tokens that share doc_stride
tokens; an answer is the best-scoring span (start + end logit) over all windows of its
question, at most max_answer_length tokens, mapped back to the context's characters.
Exact match and F1 follow the official v1.1 evaluation script (lower case, no
punctuation, no articles, single spaces; the best over the gold answers)."""

from __future__ import annotations

import collections
import re
import string

import numpy as np
from torch import nn

from ..data.squad import QAExample, read_squad
from .model import TaskModel
from .task import Encoded, ExampleScores, FinetuneTask

N_BEST = 20  # start and end candidates per window
WINDOW_KEYS = ("offset_mapping", "overflow_to_sample_mapping")  # the tokenizer's, not the model's


class Reader(TaskModel):
    """Start and end logits [batch, tokens]."""

    kind = "reader"

    def __init__(self, encoder: nn.Module):
        super().__init__(encoder)
        self.span = nn.Linear(self.hidden_size, 2)
        self.init_linear(self.span)

    def forward(self, input_ids, attention_mask, token_type_ids=None, start_positions=None,
                end_positions=None) -> dict:
        start, end = self.span(self.encode(input_ids, attention_mask, token_type_ids)).unbind(-1)
        out = {"start_logits": start, "end_logits": end}
        if start_positions is not None and end_positions is not None:
            out["loss"] = (nn.functional.cross_entropy(start, start_positions)
                           + nn.functional.cross_entropy(end, end_positions)) / 2
        return out


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _f1(prediction: str, gold: str) -> float:
    ours, theirs = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((collections.Counter(ours) & collections.Counter(theirs)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(ours), common / len(theirs)
    return 2 * precision * recall / (precision + recall)


def example_scores(predictions: dict[str, str], examples: list[QAExample]) -> dict[str, list[float]]:
    """Exact match and F1 (fractions) of each question's predicted answer text, the best
    over its gold answers."""
    out: dict[str, list[float]] = {"exact_match": [], "f1": []}
    for example in examples:
        golds = [a.text for a in example.answers]
        answer = predictions.get(example.id, "")
        out["exact_match"].append(max(float(normalize_answer(answer) == normalize_answer(g)) for g in golds))
        out["f1"].append(max(_f1(answer, g) for g in golds))
    return out


def squad_scores(predictions: dict[str, str], examples: list[QAExample]) -> dict:
    """Exact match and F1 (percent) of predicted answer texts by question id."""
    return _percent_means(example_scores(predictions, examples))


def _percent_means(each: dict[str, list[float]]) -> dict:
    return {name: 100.0 * sum(values) / len(values) for name, values in each.items()}


class QuestionAnswering(FinetuneTask):
    name = "qa"
    metric = "f1"
    percent = True
    pairs = True
    label_names = ("start_positions", "end_positions")
    own_options = ("doc_stride", "max_answer_length")
    data = "ftlens.data.read_squad: questions with answers in their contexts"

    def check(self, train, evaluation, opts) -> dict:
        self.check_options(opts)
        if opts.doc_stride * 2 > opts.max_length:
            raise ValueError(f"doc_stride ({opts.doc_stride}) must be at most half of max_length "
                             f"({opts.max_length}): consecutive windows share doc_stride tokens")
        for role, data in (("train", train), ("eval", evaluation)):
            self.check_list(role, data, QAExample)
            for example in data:
                if example.is_impossible or not example.answers:
                    raise ValueError(f"{role} question {example.id} has no answer: extractive QA here is "
                                     "SQuAD v1.1, every question answered in its context; leave it out")
                for answer in example.answers:
                    found = example.context[answer.start : answer.start + len(answer.text)]
                    if not answer.text or found != answer.text:
                        raise ValueError(f"{role} question {example.id}: answer {answer.text!r} is not in "
                                         f"its context at character {answer.start} (found {found!r}); fix "
                                         "the offset or leave the question out")
        return {}

    def model(self, encoder, head: dict) -> Reader:
        return Reader(encoder)

    def dataset(self, data, tokenizer, opts, head: dict, train: bool) -> Encoded:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("qa needs a fast tokenizer (offset mappings); this model's tokenizer is slow")
        features = tokenizer([e.question.lstrip() for e in data], [e.context for e in data],
                             truncation="only_second", max_length=opts.max_length, stride=opts.doc_stride,
                             return_overflowing_tokens=True, return_offsets_mapping=True)
        items, windows = [], []
        for i, offsets in enumerate(features["offset_mapping"]):
            example = data[features["overflow_to_sample_mapping"][i]]
            in_context = [s == 1 for s in features.sequence_ids(i)]  # the question is sequence 0
            item = {k: features[k][i] for k in features if k not in WINDOW_KEYS}
            answer = example.answers[0]
            first, last = answer.start, answer.start + len(answer.text)
            span = [t for t, (a, b) in enumerate(offsets) if in_context[t] and a < last and b > first]
            covered = span and offsets[span[0]][0] <= first and offsets[span[-1]][1] >= last
            item["start_positions"], item["end_positions"] = (span[0], span[-1]) if covered else (0, 0)
            items.append(item)
            windows.append((example.id, [o if inside else None for o, inside in zip(offsets, in_context,
                                                                                      strict=True)]))
        dataset = Encoded(items)
        dataset.windows, dataset.examples = windows, list(data)
        return dataset

    def collator(self, tokenizer):
        import transformers

        return transformers.DataCollatorWithPadding(tokenizer)

    def scores(self, prediction, eval_set, opts) -> ExampleScores:
        starts, ends = prediction.predictions
        answers = best_answers(starts, ends, eval_set.windows, eval_set.examples, opts.max_answer_length)
        each = example_scores(answers, eval_set.examples)
        return ExampleScores(_percent_means(each), 100.0, {name: np.asarray(v) for name, v in each.items()},
                             {name: np.ones(len(eval_set.examples)) for name in each},
                             [answers.get(e.id, "") for e in eval_set.examples])

    def read(self, path) -> list[QAExample]:
        return read_squad(path)


def best_answers(starts: np.ndarray, ends: np.ndarray, windows: list, examples: list[QAExample],
                 max_answer_length: int) -> dict[str, str]:
    """The best span's text per question id from each window's start / end logits
    [windows, tokens] (padded past each window's length)."""
    contexts = {e.id: e.context for e in examples}
    best: dict[str, tuple[float, str]] = {}
    for w, (example_id, offsets) in enumerate(windows):
        n = len(offsets)
        start, end = starts[w, :n], ends[w, :n]
        for s in np.argsort(start)[::-1][:N_BEST]:
            if offsets[s] is None:
                continue
            for e in np.argsort(end)[::-1][:N_BEST]:
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(start[s] + end[e])
                if example_id not in best or score > best[example_id][0]:
                    best[example_id] = (score, contexts[example_id][offsets[s][0] : offsets[e][1]])
    return {example_id: text for example_id, (_, text) in best.items()}


QA = QuestionAnswering()
