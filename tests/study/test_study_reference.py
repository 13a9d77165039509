"""The study file reference in the docs is the one generated from the config's
dataclasses, and it names every key the reader accepts."""

from pathlib import Path

from ftlens.study import config, reference

DOCS = Path(__file__).resolve().parents[2] / "docs" / "study-reference.md"


def test_the_docs_page_is_the_generated_reference():
    assert DOCS.read_text() == reference.markdown(), (
        "docs/study-reference.md is out of date: python -m ftlens.study.reference > docs/study-reference.md")


def test_every_key_the_reader_takes_is_in_the_reference():
    page = reference.markdown()
    keys = [*config.TOP_KEYS, "path", "format", "start", "limit", "generated", "n", "seed", "task",
            "train", "eval", "options", "checkpoint", "data", "in_domain", "heatmaps", "rows", "dtype",
            "tasks", "kind", "ks", "side", "top_k", "measures", "ci", "ci_groups", "word_pool", "max_length",
            "l2", "epochs"]
    for key in keys:
        assert f"| `{key}` |" in page, key
