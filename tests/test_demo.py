"""The demo runs the packaged MiniLM offline, prints the table and writes the PNG/JSON."""

import json

import numpy as np
import pytest
from ftlens.cli import main
from ftlens.data import generate_sentences


def test_demo_sentences_are_deterministic():
    text = lambda n, seed: [s.text for s in generate_sentences(n, seed)]  # noqa: E731
    assert text(5, 1) == text(5, 1)
    assert text(5, 1) != text(5, 2)
    assert all(s.endswith(".") and s[0].isupper() for s in text(20, 0))


def test_demo_prints_table_and_writes_heatmap(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["demo", "--out", str(tmp_path), "--sentences", "24", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "each layer vs the last layer" in printed and "layer 6" in printed
    png = (tmp_path / "cka_heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((tmp_path / "results.json").read_text())
    cka = np.array(results["cka"])
    assert cka.shape == (7, 7)
    np.testing.assert_allclose(np.diag(cka), 1.0, rtol=1e-9)
    np.testing.assert_allclose(cka, cka.T, rtol=1e-9)
    assert (cka[:-1, -1] < 0.99).all()  # fine structure: earlier layers differ from the last
    assert results["tokens"] > 24


def test_demo_rejects_too_few_sentences(tmp_path):
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path), "--sentences", "2"])


def test_info_command(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "compiler" in info and "cuda" in info
