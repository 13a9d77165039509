"""Labeled sentence pairs (NLI, RTE) or single sentences (SST-2): GLUE-style TSV (a
header row naming the columns) and JSONL, with the label set read from the data."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import DataFormatError, read_utf8

PREMISE_KEYS = ("premise", "sentence1", "sentence")  # "sentence": single sentences
HYPOTHESIS_KEYS = ("hypothesis", "sentence2")
LABEL_KEYS = ("label", "gold_label")
NO_LABEL = ("", "-")  # pairs without a gold label (SNLI/MNLI use "-")


@dataclass(frozen=True)
class SentencePair:
    """A pair, or a single sentence (``hypothesis`` None)."""

    premise: str
    hypothesis: str | None
    label: str | None = None


@dataclass
class PairData:
    """Sentence pairs and their label set (sorted; empty for unlabeled data)."""

    pairs: list[SentencePair]
    labels: tuple[str, ...]
    skipped: int = 0  # pairs dropped for lack of a gold label

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[SentencePair]:
        return iter(self.pairs)

    def __getitem__(self, i):
        return self.pairs[i]

    def label_ids(self) -> list[int]:
        """Each pair's label as an index into ``labels``."""
        index = {name: i for i, name in enumerate(self.labels)}
        return [index[p.label] for p in self.pairs]


def _pick(keys: tuple[str, ...], available, path: str, what: str, line: int,
          required: bool = True) -> str | None:
    for key in keys:
        if key in available:
            return key
    if not required:
        return None
    raise DataFormatError(path, line, f"no {what} column: expected one of {keys}, found {sorted(available)}")


def _collect(rows: list[tuple[int, dict]], path: str) -> PairData:
    if not rows:
        return PairData([], (), 0)
    line, first = rows[0]
    premise_key = _pick(PREMISE_KEYS, first, path, "premise", line)
    keys = (premise_key, _pick(HYPOTHESIS_KEYS, first, path, "hypothesis", line,
                               required=premise_key != "sentence"))
    # The label key may be absent from some rows (JSONL): look for it in every row.
    label_key = next((k for _, row in rows for k in LABEL_KEYS if k in row), None)
    pairs, skipped = [], 0
    for line, row in rows:
        premise, hypothesis = row.get(keys[0]), row.get(keys[1]) if keys[1] else None
        if not isinstance(premise, str) or (keys[1] and not isinstance(hypothesis, str)):
            raise DataFormatError(path, line, f"missing {' or '.join(repr(k) for k in keys if k)} text")
        label = row.get(label_key) if label_key else None
        if label_key and (label is None or str(label).strip() in NO_LABEL):
            skipped += 1
            continue
        pairs.append(SentencePair(premise, hypothesis, None if label is None else str(label).strip()))
    labels = tuple(sorted({p.label for p in pairs if p.label is not None}))
    return PairData(pairs, labels, skipped)


def _tsv_rows(path: str) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(read_utf8(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None:
        raise DataFormatError(path, 1, "empty file: expected a header row")
    for row in reader:
        if not any(row):
            continue
        if len(row) != len(header):
            raise DataFormatError(
                path, reader.line_num, f"expected {len(header)} tab-separated columns, found {len(row)}"
            )
        yield reader.line_num, dict(zip(header, row, strict=True))


def _jsonl_rows(path: str) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(read_utf8(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, number, f"invalid JSON: {err.msg}") from err
        if not isinstance(row, dict):
            raise DataFormatError(path, number, "expected one JSON object per line")
        yield number, row


def read_pairs(path: str | os.PathLike) -> PairData:
    """Reads ``.tsv`` (GLUE style, with a header) or ``.jsonl`` sentence pairs.

    Columns/keys: premise or sentence1, hypothesis or sentence2, label or gold_label
    (optional: unlabeled test files give label None); or, for single sentences, sentence
    and label (the hypotheses are None). Pairs whose label is "-" are skipped.
    """
    path = os.fspath(path)
    if path.endswith((".jsonl", ".json")):
        return _collect(list(_jsonl_rows(path)), path)
    if path.endswith((".tsv", ".txt")):
        return _collect(list(_tsv_rows(path)), path)
    raise ValueError(f"cannot tell the format of {path!r}: use a .tsv or .jsonl file")
