"""A whole study: the demo at a tenth of its size through the command line, its results
against direct calls, reruns that reuse every stage, resumption after lost or killed
stages, and the report rebuilt and rendered in headless Chromium."""

import contextlib
import html
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import ftlens
import numpy as np
import pytest
import yaml
from ftlens.activations.models import packaged_minilm_path
from ftlens.cli import main
from ftlens.compare.models import LayerComparison
from ftlens.demo import ewt_files
from ftlens.similarity.intervals import wilson
from ftlens.study import StudyResult, load_config, run_study
from ftlens.study.inputs import load
from ftlens.study.report.findings import did_not_learn, findings, flags
from ftlens.study.runner import stage_names

SCALE = "0.05"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--out", str(out), "--scale", SCALE, "--no-progress"]) == 0
    return out, printed.getvalue()


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_demo_prints_a_summary_and_writes_every_part(demo_run):
    out, printed = demo_run
    assert "pair: accuracy" in printed and "rsa base vs fine-tuned, top layer" in printed
    assert f"the report: {out / 'report.html'}" in printed
    results = _results(out)
    assert set(results["tasks"]) == {"parsing", "pair"}
    assert results["versions"]["ftlens"] == ftlens.__version__
    for task in ("parsing", "pair"):
        for set_name in ("sentences", "pairs"):
            result = LayerComparison.from_dict(results["compare"][task][set_name])
            low, high = result.interval("rsa")
            assert result.rsa.shape == (7,)
            assert (low <= result.rsa + 1e-12).all() and (result.rsa <= high + 1e-12).all()
            assert result.ci == 0.95 and result.ci_groups == 10
        cls = results["detail"][task]["cls"]["isotropy"]["base"]
        assert cls["mean_cosine"][0] is None  # [CLS] at the embeddings is one constant row: undefined
        assert all(v is not None for v in cls["mean_cosine"][1:])
        assert np.array(results["detail"][task]["tokens"]["cka"]).shape == (7, 7)
    assert set(results["probes"]) == {"base", "parsing", "pair"}
    probe_set = "ewt" if ewt_files() else "sentences"  # UD EWT where the data folder holds it
    assert set(results["probe_changes"]) == {"parsing", "pair"}  # each a paired bootstrap over sentences
    assert results["probes"]["pair"][probe_set]["interval_method"] == "sentences"
    assert set(results["probes"]["base"]) == {probe_set}
    for per_set in results["probes"].values():  # the probes do not saturate
        accuracy = np.array(per_set[probe_set]["scores"]["accuracy"], dtype=float)
        assert np.nanmin(accuracy) < 0.98
    assert [row["k"] for row in results["ablations"][0]["rows"]] == [0, 3, 6]
    for name in ("similarity_rsa.png", "similarity_cka.png", "heatmap_pair.png", f"probes_{probe_set}.png",
                 "ablation_freeze_pair.png", "isotropy_cls.png", "isotropy_tokens.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (out / name).with_suffix(".csv").read_text().startswith("panel,series,x,value,low,high")
    assert yaml.safe_load((out / "study.yaml").read_text())["name"] == "demo"


def test_demo_ablation_takes_k_zero_from_the_fine_tune_stage(demo_run):
    out, _ = demo_run
    results = _results(out)
    rows = results["ablations"][0]["rows"]
    assert rows[0]["model_dir"] == results["tasks"]["pair"]["model_dir"]  # the same model, not trained again
    (sweep,) = (out / "ablations").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["freeze-3", "freeze-6"]
    assert rows[0]["metrics"] == results["tasks"]["pair"]["metrics"]
    assert not list(out.rglob("checkpoints/checkpoint-*"))  # finished runs keep no Trainer checkpoints


def test_demo_stages_are_the_planned_ones_in_order(demo_run):
    out, printed = demo_run
    results = _results(out)
    planned = stage_names(load_config(out / "study.yaml"))
    assert [s["stage"] for s in results["stages"]] == planned
    for i, name in enumerate(planned, 1):
        assert f"stage {i}/{len(planned)} {name}: ran in" in printed


def test_demo_report_states_its_findings_first(demo_run):
    out, _ = demo_run
    results = StudyResult.load(out)
    page = (out / "report.html").read_text()
    found = findings(results)
    assert {f.topic for f in found} == {"similarity", "domain", "probes", "ablation", "isotropy"}
    first_figure = page.index("<figure")
    for f in [*found, *flags(results)]:
        assert html.escape(f.text) in page
        assert page.index(html.escape(f.text)) < first_figure


def test_study_values_equal_direct_calls(demo_run):
    out, _ = demo_run
    results = _results(out)
    config = load_config(out / "study.yaml")
    pairs = load(next(e for e in config.evaluation if e.name == "pairs").data)
    direct = ftlens.compare_models("minilm", results["tasks"]["pair"]["model_dir"], pairs, ("rsa", "cka"),
                                   ci=0.95, ci_groups=10, progress=False)
    stored = LayerComparison.from_dict(results["compare"]["pair"]["pairs"])
    for name in ("rsa", "cka"):
        np.testing.assert_allclose(stored.values[name], direct.values[name], rtol=0, atol=1e-12)
        np.testing.assert_allclose(stored.intervals[name], direct.intervals[name], rtol=0, atol=1e-12)
    # a tiny demo may not learn: then, and only then, the report says so first
    pair = StudyResult.load(out).tasks["pair"]
    low, _ = wilson(pair.value, pair.baseline["n"])
    labels = [p.label for p in load(config.task("pair").eval)]
    assert pair.baseline["value"] == max(Counter(labels).values()) / len(labels)
    assert ("pair" in did_not_learn(StudyResult.load(out))) == (low <= pair.baseline["value"])


def test_rerun_reuses_every_stage(demo_run):
    out, _ = demo_run
    before = _results(out)
    lines = []
    again = run_study(out / "study.yaml", progress=False, log=lines.append).to_dict()
    assert {s["status"] for s in again["stages"]} == {"reused"}
    assert len(again["stages"]) == len(before["stages"])
    assert sum(": reused (" in line for line in lines) == len(before["stages"])
    for key in ("tasks", "compare", "detail", "probes", "ablations"):
        assert again[key] == before[key]


def test_lost_stages_and_report_are_rebuilt(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"  # the records only: they name the models and stores they used
    shutil.copytree(out / "stages", copy / "stages")
    for name in ("study.json", "study.yaml", "results.json"):
        shutil.copy(out / name, copy / name)
    before = _results(copy)
    (copy / "stages" / "compare__pair__pairs.json").unlink()
    (copy / "results.json").unlink()
    for png in copy.glob("*.png"):
        png.unlink()
    again = run_study(copy / "study.yaml", copy, progress=False, log=lambda line: None).to_dict()
    ran = {s["stage"] for s in again["stages"] if s["status"] == "ran"}
    assert ran == {"compare/pair/pairs"}
    # the same numbers, recomputed (to rounding: the demo's threads were sized to the free cores)
    for task, sets in before["compare"].items():
        for set_name, stored in sets.items():
            a = LayerComparison.from_dict(stored)
            b = LayerComparison.from_dict(again["compare"][task][set_name])
            assert (a.layers, a.n_rows, a.n_inputs, list(a.values)) == (
                b.layers, b.n_rows, b.n_inputs, list(b.values))
            for name in a.values:
                np.testing.assert_allclose(b.values[name], a.values[name], rtol=0, atol=1e-12)
                np.testing.assert_allclose(b.intervals[name], a.intervals[name], rtol=0, atol=1e-12)
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert "data:image/png;base64," in (copy / "report.html").read_text()


def _chromium() -> str:
    """The Chromium binary, installed with apt-get where missing and possible."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    installed = subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "chromium"], capture_output=True,
                               text=True, timeout=900) if shutil.which("apt-get") else None
    if installed is None or installed.returncode != 0 or not shutil.which("chromium"):
        why = "no apt-get" if installed is None else installed.stderr.strip()[-300:]
        pytest.skip(f"Chromium is not installed and could not be installed ({why})")
    return shutil.which("chromium")


CHECK = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const out = document.createElement("pre");
  out.id = "ftlens-check";
  out.textContent = JSON.stringify({images: images.length, broken: broken, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]


def _rendered(browser: str, out: Path, tmp_path: Path) -> tuple[dict, str]:
    """The report opened in headless Chromium: (the page's check: images, broken ones,
    errors; the DOM as rendered). A screenshot is kept next to the report, to look at."""
    page = (out / "report.html").read_text()
    assert "<script" not in page  # the report itself runs no script
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("<head>", "<head>" + CHECK, 1))
    dom = subprocess.run([browser, *BROWSER_FLAGS, "--dump-dom", checked.as_uri()], capture_output=True,
                         text=True, timeout=120)
    found = dom.stdout.split('<pre id="ftlens-check">', 1)
    assert len(found) == 2, dom.stderr[-2000:]
    shot = out / "report_screenshot.png"
    subprocess.run([browser, *BROWSER_FLAGS, f"--screenshot={shot}", "--window-size=1200,3000",
                    (out / "report.html").as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
    return json.loads(found[1].split("</pre>", 1)[0].replace("&quot;", '"')), dom.stdout


def test_report_renders_in_headless_chromium(demo_run, tmp_path):
    out, _ = demo_run
    check, dom = _rendered(_chromium(), out, tmp_path)
    assert check == {"images": len(list(out.glob("*.png"))) - 1, "broken": [], "errors": []}
    assert dom.index("id=\"findings\"") < dom.index("<figure")


def test_a_study_whose_model_stayed_at_chance_says_so_first(tmp_path):
    """A pair classifier trained for one step at a tiny learning rate learns nothing: the
    report's first block is the sanity flag saying so, and its panel says so too."""
    study = {"name": "chance", "base": "minilm",
             "tasks": {"pair": {"task": "pair", "train": {"generated": "pairs", "n": 48, "seed": 1},
                                "eval": {"generated": "pairs", "n": 90, "seed": 2},
                                "options": {"max_steps": 1, "learning_rate": 1e-7, "batch_size": 8}}},
             "evaluation": {"pairs": {"data": {"generated": "pairs", "n": 40, "seed": 3},
                                      "in_domain": ["pair"]}},
             "compare": {"measures": ["rsa", "cka"], "ci": 0.95, "ci_groups": 5, "heatmaps": False},
             "isotropy": False}
    (tmp_path / "chance.yaml").write_text(yaml.safe_dump(study))
    out = tmp_path / "run"
    results = run_study(tmp_path / "chance.yaml", out, progress=False, log=lambda line: None)
    (flag,) = [f for f in flags(results) if f.kind == "chance"]
    assert flag.facts["task"] == "pair"
    check, dom = _rendered(_chromium(), out, tmp_path)
    assert check["broken"] == [] and check["errors"] == []
    body = html.unescape(dom.split("<body>", 1)[1])
    assert body.index("Sanity flags") < body.index("id=\"findings\"") < body.index("<figure")
    assert body.index(flag.text) < body.index("id=\"findings\"")


def test_edited_settings_train_into_a_new_folder_and_keep_the_old_models(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out / "stages", copy / "stages")
    shutil.copytree(out / "ablations", copy / "ablations")
    shutil.copy(out / "study.json", copy / "study.json")
    (old,) = (copy / "ablations").iterdir()
    old_files = {p: p.read_bytes() for p in old.rglob("*.safetensors")}
    assert old_files
    study = yaml.safe_load((out / "study.yaml").read_text())
    study["ablations"][0].update(ks=[0], options={"learning_rate": 1e-4})
    (copy / "study.yaml").write_text(yaml.safe_dump(study))
    again = run_study(copy / "study.yaml", copy, progress=False, report=False, log=lambda line: None)
    again = again.to_dict()
    assert {s["stage"] for s in again["stages"] if s["status"] == "ran"} == {"ablate/freeze/pair"}
    (new,) = set((copy / "ablations").iterdir()) - {old}
    assert again["ablations"][0]["rows"][0]["model_dir"].startswith(str(new))
    assert {p: p.read_bytes() for p in old.rglob("*.safetensors")} == old_files


def test_killed_run_resumes_without_redoing_finished_stages(tmp_path):
    """A study of a checkpoint (MiniLM itself) compared on three sets: killed (SIGKILL) once
    its first stage is recorded, then rerun."""
    study = {
        "name": "kill", "base": "minilm", "out": str(tmp_path / "run"),
        "tasks": {"same": {"task": "pair", "checkpoint": str(packaged_minilm_path())}},
        "evaluation": {f"set{i}": {"data": {"generated": "sentences", "n": 150, "seed": i}}
                       for i in range(3)},
        "compare": {"measures": ["rsa"], "ci": None, "heatmaps": False},
        "isotropy": None,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "ftlens", "run", str(path), "--no-progress"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stages = tmp_path / "run" / "stages"
    deadline = time.time() + 300
    while not list(stages.glob("compare__*.json")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in stages.glob("compare__*.json"))
    assert 1 <= len(finished) < 3 and not (tmp_path / "run" / "results.json").exists()
    for record in stages.iterdir():  # whatever was written is whole
        json.loads(record.read_text())
    lines = []
    results = run_study(path, progress=False, report=False, log=lines.append).to_dict()
    reused = {s["stage"] for s in results["stages"] if s["status"] == "reused"}
    assert {f"compare/same/{name.split('__')[-1][:-5]}" for name in finished} <= reused
    assert len(results["compare"]["same"]) == 3
    for result in results["compare"]["same"].values():
        np.testing.assert_allclose(np.array(result["rsa"]), 1.0, atol=1e-6)


def test_a_revert_ablation_reverts_the_studys_own_fine_tuned_model(tmp_path):
    """A study's revert sweep works on the model its fine-tune stage made: with side=above,
    k = L keeps every fine-tuned layer, so it scores what the fine-tune stage scored."""
    study = {"name": "revert", "base": "minilm",
             "tasks": {"pair": {"task": "pair", "train": {"generated": "pairs", "n": 48, "seed": 1},
                                "eval": {"generated": "pairs", "n": 24, "seed": 2},
                                "options": {"max_steps": 3, "batch_size": 8, "learning_rate": 1e-4}}},
             "evaluation": {"pairs": {"data": {"generated": "pairs", "n": 12, "seed": 3},
                                      "in_domain": ["pair"]}},
             "compare": {"heatmaps": False, "ci_groups": 4}, "isotropy": False,
             "ablations": [{"kind": "revert", "task": "pair", "ks": [0, 6]}]}
    (tmp_path / "revert.yaml").write_text(yaml.safe_dump(study))
    results = run_study(tmp_path / "revert.yaml", tmp_path / "run", progress=False, report=False,
                        log=lambda line: None)
    rows = results.ablations[0].result.rows
    tuned = results.tasks["pair"]
    assert [row["k"] for row in rows] == [0, 6]
    assert rows[1]["value"] == pytest.approx(tuned.value, abs=1e-12)
    assert rows[1]["model_dir"] == tuned.model_dir
