"""Hugging Face ``datasets`` by name, when online (optional extra: pip install ftlens[hub])."""

from __future__ import annotations

from .pairs import PairData, SentencePair


def load_hub(name: str, split: str, *, config: str | None = None, text_column: str | None = None,
             limit: int | None = None):
    """A hub data set as ftlens data: sentence pairs (premise/hypothesis or
    sentence1/sentence2 columns) as PairData, otherwise the sentences of ``text_column``
    (default: "sentence" or "text")."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError("reading hub data sets needs the `datasets` package: pip install datasets") from err
    ds = datasets.load_dataset(name, config, split=split)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    cols = set(ds.column_names)
    for a, b in (("premise", "hypothesis"), ("sentence1", "sentence2")):
        if {a, b} <= cols:
            feature = ds.features.get("label")
            names = getattr(feature, "names", None)
            pairs = []
            for row in ds:
                label = row.get("label")
                if names is not None and label is not None:
                    label = names[label] if label >= 0 else None
                if "label" in cols and label is None:
                    continue
                pairs.append(SentencePair(row[a], row[b], None if label is None else str(label)))
            return PairData(pairs, tuple(sorted({p.label for p in pairs if p.label is not None})))
    column = text_column or next((c for c in ("sentence", "text") if c in cols), None)
    if column is None:
        raise ValueError(f"{name}: pass text_column=, one of {sorted(cols)}")
    return [row[column] for row in ds if row[column].strip()]
