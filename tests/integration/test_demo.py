"""The demo's generated corpus and command line (the demo study itself: test_study.py)."""

import json

import pytest
from ftlens.cli import main
from ftlens.data import generate_sentences


def test_demo_sentences_are_deterministic():
    text = lambda n, seed: [s.text for s in generate_sentences(n, seed)]  # noqa: E731
    assert text(5, 1) == text(5, 1)
    assert text(5, 1) != text(5, 2)
    assert all(s.endswith(".") and s[0].isupper() for s in text(20, 0))


@pytest.mark.parametrize("scale", ["0", "inf", "nan"])
def test_demo_rejects_a_scale_that_is_not_positive_and_finite(tmp_path, capsys, scale):
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path), "--scale", scale])
    assert f"--scale must be a positive finite number, got {float(scale)}" in capsys.readouterr().err


def test_info_command(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "compiler" in info and "cuda" in info
