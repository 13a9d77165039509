"""The README's runnable examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
RUNNABLE = ("## Quick start", "## Comparing two models", "### Activation store")


def _first_block_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


@pytest.mark.parametrize("heading", RUNNABLE)
def test_readme_example_runs(heading, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(_first_block_after(heading), f"README {heading}", "exec"), {})
