"""A study under ``torchrun --nproc-per-node 2`` (gloo on the CPU): fine-tuning through the
Trainer's DDP, evaluation sets sharded by rank with accumulators merged across ranks, rank
0 writing the report. Its numbers equal one process's on the same models and data."""

import json
import os
import subprocess
import sys

import ftlens
import numpy as np
import pytest
import torch
import yaml
from ftlens.compare.models import LayerComparison
from ftlens.probes import ProbeResult
from ftlens.study import load_config
from ftlens.study.inputs import load

STUDY = {
    "name": "ddp",
    "base": "minilm",
    "tasks": {"pair": {"task": "pair", "train": {"generated": "pairs", "n": 64, "seed": 1},
                       "eval": {"generated": "pairs", "n": 24, "seed": 2},
                       "options": {"max_steps": 3, "batch_size": 8, "learning_rate": 1e-4}}},
    "evaluation": {"pairs": {"data": {"generated": "pairs", "n": 75, "seed": 4}, "in_domain": ["pair"]}},
    # one thread in both runs: the ranks take turns at the chunks one process runs and each
    # jackknife group adds a chunk's rows at once, so only the order of the sums differs
    "compare": {"measures": ["rsa", "cka", "procrustes"], "ci": 0.95, "ci_groups": 7},
    "probes": {"tasks": ["upos"], "train": {"generated": "sentences", "n": 40, "seed": 5},
               "eval": {"dev": {"generated": "sentences", "n": 20, "seed": 6}}},
    "isotropy": {"rows": ["tokens"]},
}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY, "out": str(folder / "run")}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "ftlens", "run", str(path), "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return path, folder / "run", done.stdout


def test_two_ranks_equal_one_process(ddp_run):
    path, run, printed = ddp_run
    results = json.loads((run / "results.json").read_text())
    assert results["ranks"] == 2
    assert printed.count("compare/pair/pairs: ran in") == 1  # rank 0 alone logs
    config = load_config(path)
    model = results["tasks"]["pair"]["model_dir"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        measures = ("rsa", "cka", "procrustes")
        singles = {ev.name: ftlens.compare_models("minilm", model, load(ev.data), measures, ci=0.95,
                                                  ci_groups=7, batch_size=config.compare.capture.batch_size,
                                                  progress=False)
                   for ev in config.evaluation}
    finally:
        torch.set_num_threads(threads)
    for ev in config.evaluation:
        stored = LayerComparison.from_dict(results["compare"]["pair"][ev.name])
        single = singles[ev.name]
        assert stored.n_rows == single.n_rows and stored.n_inputs == single.n_inputs
        for name in ("rsa", "cka", "procrustes"):
            np.testing.assert_allclose(stored.values[name], single.values[name], rtol=0, atol=1e-10)
            np.testing.assert_allclose(stored.intervals[name], single.intervals[name], rtol=0, atol=1e-10)
    detail = LayerComparison.from_dict(results["detail"]["pair"]["tokens"])
    assert detail.cka.shape == (7, 7) and detail.isotropy["base"]["mean_cosine"].shape == (7,)


def test_two_ranks_probe_like_one_process(ddp_run, tmp_path):
    path, run, _ = ddp_run
    results = json.loads((run / "results.json").read_text())
    config = load_config(path)
    model = results["tasks"]["pair"]["model_dir"]
    train, dev = (ftlens.store.write(model, load(data), tmp_path / name, rows="words", progress=False)
                  for name, data in (("train", config.probes.train), ("dev", config.probes.eval["dev"])))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks ran: the probes' optimizer stops short of convergence, so
    try:                      # other GEMM sums can flip a row of the control task
        single = ftlens.probe(train, dev, ["upos"], progress=False)
    finally:
        torch.set_num_threads(threads)
    stored = ProbeResult.from_dict(results["probes"]["pair"]["dev"])
    np.testing.assert_allclose(stored.accuracy, single.accuracy, rtol=0, atol=1e-6)
    np.testing.assert_allclose(stored.selectivity, single.selectivity, rtol=0, atol=1e-6)
    assert (run / "report.html").exists()
