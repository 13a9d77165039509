"""SQuAD v1.1 / v2.0 JSON: contexts, questions and answers with character offsets."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .errors import DataFormatError


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the context


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    title: str = ""
    answers: list[Answer] = field(default_factory=list)
    is_impossible: bool = False  # SQuAD 2.0 unanswerable questions


def _line_of(raw: str, needle: str) -> int | None:
    at = raw.find(needle)
    return None if at < 0 else raw.count("\n", 0, at) + 1


def read_squad(path: str | os.PathLike) -> list[QAExample]:
    """Every question of a SQuAD file; an answer whose offset does not match its text in the
    context raises DataFormatError naming the file, the line and the question id."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid JSON: {err.msg}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataFormatError(path, 1, 'expected a SQuAD file: {"data": [{"paragraphs": ...}]}')
    out = []
    for article in doc["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            for qa in paragraph.get("qas", []):
                answers = []
                for a in qa.get("answers", []):
                    start, text = int(a["answer_start"]), a["text"]
                    if context[start : start + len(text)] != text:
                        line = _line_of(raw, json.dumps(qa["id"]))
                        found = context[start : start + len(text)]
                        raise DataFormatError(
                            path, line,
                            f"question {qa['id']}: answer {text!r} is not at offset {start} of its "
                            f"context (found {found!r} there)",
                        )
                    answers.append(Answer(text, start))
                out.append(QAExample(str(qa["id"]), qa["question"], context, article.get("title", ""),
                                     answers, bool(qa.get("is_impossible", False))))
    return out
