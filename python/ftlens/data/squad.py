"""SQuAD v1.1 / v2.0 JSON: contexts, questions and answers with character offsets."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .errors import DataFormatError, read_utf8


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
    raw = read_utf8(path)
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid JSON: {err.msg}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataFormatError(path, 1, 'expected a SQuAD file: {"data": [{"paragraphs": ...}]}')
    out = []
    for article in doc["data"]:
        for paragraph in article.get("paragraphs", []):
            questions = paragraph.get("qas", [])
            context = paragraph.get("context")
            if not isinstance(context, str):
                first = questions[0].get("id") if questions and isinstance(questions[0], dict) else None
                line = _line_of(raw, json.dumps(first)) if first is not None else None
                title = article.get("title", "an article")
                raise DataFormatError(path, line, f"a paragraph of {title!r} has no 'context' text")
            for qa in questions:
                out.append(_example(qa, context, article.get("title", ""), path, raw))
    return out


def _example(qa: dict, context: str, title: str, path: str, raw: str) -> QAExample:
    def fail(problem: str):
        line = _line_of(raw, json.dumps(qa.get("id")))
        raise DataFormatError(path, line, f"question {qa.get('id')}: {problem}")

    if "id" not in qa or not isinstance(qa.get("question"), str):
        fail("needs an 'id' and a 'question' text")
    answers = []
    for a in qa.get("answers", []):
        start, text = a.get("answer_start"), a.get("text")
        if isinstance(start, bool) or not isinstance(start, int) or not isinstance(text, str):
            fail(f"answer_start must be an integer and text a string, got {start!r} and {text!r}")
        if not text or not 0 <= start <= len(context) - len(text):
            fail(f"answer {text!r} at offset {start} does not lie within its context "
                 f"({len(context)} characters)")
        if context[start : start + len(text)] != text:
            fail(f"answer {text!r} is not at offset {start} of its context "
                 f"(found {context[start : start + len(text)]!r} there)")
        answers.append(Answer(text, start))
    impossible = bool(qa.get("is_impossible", False))
    return QAExample(str(qa["id"]), qa["question"], context, title, answers, impossible)
