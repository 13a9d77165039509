"""The runnable examples of the README and the docs pages run as written, and the study
files they show validate."""

import re
from pathlib import Path

import ftlens
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _first_block_after(page: str, heading: str, language: str = "python") -> str:
    text = (ROOT / page).read_text()
    start = text.index(heading)
    return re.search(rf"```{language}\n(.*?)```", text[start:], re.S).group(1)


def _check_quick_start(ns: dict) -> None:
    m, X, Y = ns["m"], ns["X"], ns["Y"]
    assert m.n == 5000 and 0 < m.cka() < 1
    assert m.cka() == pytest.approx(ftlens.cka(X, Y), rel=1e-6)  # float32: chunking changes rounding


def _check_comparison(ns: dict) -> None:
    result = ns["result"]
    np.testing.assert_allclose(result.cka, 1.0, atol=1e-6)  # the same model twice
    assert ftlens.LayerComparison.load("compare.json").n_rows == result.n_rows


def _check_store(ns: dict) -> None:
    store = ns["store"]
    assert ns["layer6"].shape == (store.n_rows, 384) and len(ns["codes"]) == store.n_rows
    assert ns["chunk"].shape[0] == store.n_layers


def _check_probes(ns: dict) -> None:
    result = ns["result"]
    assert result.accuracy.shape == (7, 4) and np.nanmax(result.accuracy[:, 0]) > 0.9
    assert np.all(np.isfinite(result.selectivity[:, 0])) and np.all(np.isfinite(result.root_accuracy[:, 3]))
    assert ftlens.ProbeResult.load("probe.json").tasks == ["upos", "edge:deprel", "arc", "depth"]
    upos = result.accuracy[:, 0]
    assert np.all(ns["low"][:, 0] <= upos) and np.all(upos <= ns["high"][:, 0])


def _check_probe_seeds(ns: dict) -> None:
    combined, change, base = ns["combined"], ns["change"], ns["base"]
    assert combined.seeds == [0, 1] and combined.interval_method == "multibootstrap"
    assert np.all(ns["low"] <= combined.accuracy + 1e-12) and np.all(combined.accuracy <= ns["high"] + 1e-12)
    np.testing.assert_allclose(change.estimate, combined.accuracy - base.accuracy, atol=1e-12)


def _check_tracking(ns: dict) -> None:
    trajectory, run = ns["trajectory"], ns["run"]
    assert trajectory.steps == [0, 2, 4, 6, 8] and trajectory.values["cka"].shape == (5, 7)
    final = ftlens.compare_models("minilm", run.model_dir, ns["tracking"], ("cka",), progress=False)
    np.testing.assert_allclose(trajectory.values["cka"][-1], final.cka, rtol=0, atol=1e-6)


def _check_finetune(ns: dict) -> None:
    result = ns["result"]
    assert 0 <= result.metrics["eval_accuracy"] <= 1 and (result.model_dir / "model.safetensors").exists()
    assert type(ns["tuned"]).__name__ == "BertModel"
    assert 0 <= ns["parser"].metrics["eval_las"] <= ns["parser"].metrics["eval_uas"] <= 100


def _check_seeds(ns: dict) -> None:
    runs, interval, combined = ns["runs"], ns["interval"], ns["combined"]
    assert runs.seeds == [0, 1, 2] and len(runs.values()) == 3
    assert interval.estimate == pytest.approx(runs.values().mean()) and interval.seeds == 3
    assert combined.seeds == [0, 1, 2] and combined.interval_method == "multibootstrap"
    assert np.all(ns["low"] <= combined.cka + 1e-12) and np.all(combined.cka <= ns["high"] + 1e-12)


def _check_ablation(ns: dict) -> None:
    sweep = ns["sweep"]
    assert [row["k"] for row in sweep.rows] == [0, 3, 6] and Path("runs/revert/ablation.png").exists()


def _check_surgery(ns: dict) -> None:
    import torch

    model, base = ns["model"], ns["base"]
    assert ns["frozen"] and not any(p.requires_grad for p in model.bert.embeddings.parameters())
    for mine, theirs in zip(model.bert.encoder.layer[4:], base.bert.encoder.layer[4:], strict=True):
        assert all(torch.equal(a, b) for a, b in zip(mine.parameters(), theirs.parameters(), strict=True))
    assert not torch.equal(model.bert.pooler.dense.weight, base.bert.pooler.dense.weight)


def _check_intervals(ns: dict) -> None:
    low, high = ns["low"], ns["high"]
    np.testing.assert_allclose(low, 1.0, atol=1e-6)  # the same model twice: no spread
    np.testing.assert_allclose(high, 1.0, atol=1e-6)
    assert ns["result"].ci_groups == 10


def _check_pairwise(ns: dict) -> None:
    assert ns["rbf"]["method"] == "tiles" and 0 < ns["rbf"]["value"] < 1
    assert ns["spearman"]["exact"] and 0 < ns["spearman"]["value"] < 1
    assert ns["test"]["p_value"] == pytest.approx(1 / 21) and ns["test"]["reuse"] == "held pairs"
    assert abs(ns["mini"]["value"] - ftlens.cka(ns["X"], ns["Y"], debiased=True)) < 0.05


CHECKS = {
    ("README.md", "## Quick start"): _check_quick_start,
    ("docs/similarity.md", "### Pairwise measures"): _check_pairwise,
    ("docs/compare.md", "# Comparing two models"): _check_comparison,
    ("docs/compare.md", "### Intervals"): _check_intervals,
    ("docs/activations.md", "### Activation store"): _check_store,
    ("docs/probes.md", "# Probes"): _check_probes,
    ("docs/probes.md", "### Over fine-tuning seeds"): _check_probe_seeds,
    ("docs/finetuning.md", "## Fine-tuning"): _check_finetune,
    ("docs/finetuning.md", "### Seeds"): _check_seeds,
    ("docs/finetuning.md", "### While it trains"): _check_tracking,
    ("docs/finetuning.md", "## Ablations"): _check_ablation,
    ("docs/finetuning.md", "## Layer surgery"): _check_surgery,
}


@pytest.mark.parametrize(("page", "heading"), list(CHECKS), ids=[f"{p}:{h}" for p, h in CHECKS])
def test_example_runs(page, heading, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(_first_block_after(page, heading), f"{page} {heading}", "exec"), namespace)
    CHECKS[(page, heading)](namespace)


@pytest.mark.parametrize("page", ["README.md", "docs/studies.md"])
def test_study_file_shown_is_valid(page, tmp_path, data_dir, monkeypatch):
    """The study YAML shown validates against the real data (the checkpoint folder aside,
    which a user's own fine-tuning run provides)."""
    import yaml
    from ftlens.study import parse_config

    study = yaml.safe_load(_first_block_after(page, "## Studies" if page == "README.md" else "# Studies",
                                              "yaml"))
    checkpoint = tmp_path / "runs" / "parsing" / "model"
    checkpoint.mkdir(parents=True)
    monkeypatch.setenv("FTLENS_DATA_DIR", str(data_dir.resolve()))
    config = parse_config(study, source=page, folder=tmp_path)
    assert [t.name for t in config.tasks] == ["nli", "parsing"] and config.compare.options.ci == 0.95
    assert config.evaluation[1].data.format == "pairs" and config.probes.train.limit == 3000


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("name", ["merchant2020", "merchant2020_seeds", "zhang2021", "dynamics_rte",
                                  "dynamics_tasks", "dynamics_qa"])
def test_the_shipped_study_files_validate(name, tmp_path, data_dir, monkeypatch):
    """studies/*.yaml read into valid studies against the real data (the fine-tuned
    checkpoints the Merchant study reads are a user's own runs: empty folders here)."""
    from ftlens.study import load_config

    for task in ("parsing", "nli", "qa"):
        (tmp_path / task / "model").mkdir(parents=True)
    monkeypatch.setenv("FTLENS_RUNS", str(tmp_path))
    monkeypatch.setenv("FTLENS_DATA_DIR", str(data_dir.resolve()))
    config = load_config(ROOT / "studies" / f"{name}.yaml")
    assert config.name == name
    if name == "zhang2021":
        assert config.seeds == tuple(range(10)) and len(config.tasks) == 6
        assert {t.against for t in config.tasks} == {None, "bert-adam"}
        assert config.tasks[0].train.sample == 1000
    if name == "merchant2020_seeds":
        assert config.seeds == (0, 1, 2) and {a.ks for a in config.ablations} == {(0, 1, 2, 3)}
        assert config.probes is not None and config.compare.options.draws == 1000
        assert config.track.options.every == 25 and config.track.data.limit == 500
    if name == "dynamics_tasks":
        assert config.seeds is None and [t.name for t in config.tasks] == ["parsing", "nli"]
        assert config.track.options.every == 10 and config.track.data.limit == 500
    if name == "dynamics_rte":
        assert config.seeds == tuple(range(4)) and config.track.options.every == 10
