"""Several seeds of one procedure: one run folder per seed, side by side in worker
processes, finished seeds reused (never retrained), bad input refused by name."""

import json

import ftlens
import pytest
import torch
from ftlens.data.generated import generate_pairs
from ftlens.finetuning import seeds as seeds_module

FEW = dict(max_steps=4, batch_size=8, max_length=40, eval_steps=4, save_steps=4, learning_rate=1e-4,
           progress=False)


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(64, seed=0), generate_pairs(24, seed=1)


@pytest.fixture(scope="module")
def runs(pairs, tmp_path_factory):
    return ftlens.finetune("minilm", "pair", *pairs, tmp_path_factory.mktemp("seeds"), seeds=[3, 1],
                           workers=2, **FEW)


def _finished_at(runs) -> dict:
    return {run.seed: (run.out_dir / "metrics.json").stat().st_mtime_ns for run in runs.runs}


def test_each_seed_is_its_own_run_and_equals_a_single_run_of_that_seed(runs, pairs, tmp_path):
    assert runs.seeds == [3, 1] and [r.out_dir.name for r in runs.runs] == ["seed-3", "seed-1"]
    for run in runs.runs:
        assert json.loads((run.out_dir / "metrics.json").read_text())["seed"] == run.seed
        assert len(run.scores().predictions) == len(pairs[1])
    assert runs.values().tolist() == [r.metrics["eval_accuracy"] for r in runs.runs]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers ran: one thread each
    try:
        alone = ftlens.finetune("minilm", "pair", *pairs, tmp_path, seed=1, **FEW)
    finally:
        torch.set_num_threads(before)
    assert alone.metrics["eval_loss"] == pytest.approx(runs.runs[1].metrics["eval_loss"], rel=1e-5)
    assert alone.scores().predictions == runs.runs[1].scores().predictions


def test_finished_seeds_are_reused_and_only_new_ones_trained(runs, pairs, monkeypatch):
    finished = _finished_at(runs)
    trained = []
    real = seeds_module.finetune_run

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        trained.append((kwargs["seed"], result.reused))
        return result

    monkeypatch.setattr(seeds_module, "finetune_run", counting)
    again = ftlens.finetune("minilm", "pair", *pairs, runs.out_dir, seeds=[1, 3, 0], workers=1, **FEW)
    after = _finished_at(again)
    assert again.seeds == [1, 3, 0] and {s: after[s] for s in finished} == finished
    assert [s for s, reused in trained if not reused] == [0]  # only the new seed trained


def test_bad_seeds_and_another_procedure_are_refused(runs, pairs):
    with pytest.raises(ValueError, match=r"seeds \[1\] appear more than once"):
        ftlens.finetune("minilm", "pair", *pairs, runs.out_dir, seeds=[1, 2, 1], **FEW)
    with pytest.raises(ValueError, match=r"seed -1 is not a whole number"):
        ftlens.finetune("minilm", "pair", *pairs, runs.out_dir, seeds=[-1], **FEW)
    with pytest.raises(ValueError, match=r"either seeds=\[...\] \(several runs\) or seed="):
        ftlens.finetune("minilm", "pair", *pairs, runs.out_dir, seeds=[1], seed=2, **FEW)
    with pytest.raises(ValueError, match=r"workers=64 is more than the \d+ cores"):
        ftlens.finetune("minilm", "pair", *pairs, runs.out_dir, seeds=[5], workers=64, **FEW)
    with pytest.raises(ValueError, match=r"holds fine-tuning runs of another procedure with other settings "
                                         r"\(\['options'\] differ"):
        ftlens.finetune("minilm", "pair", *pairs, runs.out_dir, seeds=[1], **{**FEW, "learning_rate": 3e-5})
    with pytest.raises(ValueError, match=r"workers= runs several seeds side by side"):
        ftlens.finetune("minilm", "pair", *pairs, runs.out_dir, workers=2, **FEW)


def test_a_failed_seed_does_not_stop_the_others_and_is_named(pairs, tmp_path, monkeypatch):
    real = seeds_module.finetune_run

    def failing(*args, **kwargs):
        if kwargs["seed"] == 7:
            raise RuntimeError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(seeds_module, "finetune_run", failing)
    with pytest.raises(RuntimeError, match=r"seeds \[7\] failed \(the first: RuntimeError: out of memory\)"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, seeds=[7, 8], workers=1, **FEW)
    assert (tmp_path / "seed-8" / "metrics.json").exists()


def test_a_worker_that_fails_reports_its_log(pairs, tmp_path):
    with pytest.raises(RuntimeError, match=r"seeds \[0, 1\] failed \(the first: exit status 1: .*Error"):
        ftlens.finetune("no/such-model-here", "pair", *pairs, tmp_path, seeds=[0, 1], workers=2, **FEW)


def test_under_torchrun_the_seeds_run_one_after_another(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert seeds_module.plan_workers(None, 5)[0] == 1
    with pytest.raises(ValueError, match=r"workers=2 under torchrun: each seed.s run already spans"):
        seeds_module.plan_workers(2, 5)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert seeds_module.plan_workers(1, 5)[0] == 1 and seeds_module.plan_workers(None, 1)[0] == 1
