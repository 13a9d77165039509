"""Runs that were killed while writing a checkpoint, ran out of disk, or diverged: a rerun
resumes from the newest complete checkpoint (the partial one set aside), a full disk is one
clear error, and a diverged run stops with the step and the likely cause, never saved as
a finished run."""

import errno
import json
import math

import ftlens
import pytest
import torch
import transformers
from ftlens.data.generated import generate_pairs
from ftlens.finetuning import FinetuneDiverged, load_task_model
from ftlens.finetuning.optim import Adam

SMALL = dict(max_steps=12, batch_size=8, max_length=40, eval_steps=6, save_steps=6, learning_rate=1e-4,
             progress=False)


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(160, seed=0), generate_pairs(48, seed=1)


@pytest.fixture(scope="module")
def uninterrupted(pairs, tmp_path_factory):
    return ftlens.finetune("minilm", "pair", *pairs, tmp_path_factory.mktemp("whole"), **SMALL)


def _same_weights(a, b):
    mine, theirs = (load_task_model(r.model_dir).state_dict() for r in (a, b))
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name


def _fail_while_writing_step_12(monkeypatch, error):
    """The Trainer writes the weights of checkpoint-12, half its optimizer state, then fails."""
    save = transformers.Trainer._save_optimizer_and_scheduler

    def failing(self, output_dir):
        if self.state.global_step == 12:
            with open(f"{output_dir}/optimizer.pt", "wb") as f:
                f.write(b"\x80\x02truncated")
            raise error
        return save(self, output_dir)

    monkeypatch.setattr(transformers.Trainer, "_save_optimizer_and_scheduler", failing)


def test_a_kill_while_a_checkpoint_is_written_resumes_from_the_last_complete_one(
        pairs, uninterrupted, tmp_path, monkeypatch):
    _fail_while_writing_step_12(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    partial = tmp_path / "checkpoints" / "checkpoint-12"
    assert partial.is_dir() and not (partial / "trainer_state.json").exists()
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="checkpoint-12 is incomplete .* resumed from checkpoint-6"):
        resumed = ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    assert json.loads((tmp_path / "metrics.json").read_text())["resumed_from"] == "checkpoint-6"
    assert (tmp_path / "checkpoints" / "incomplete-checkpoint-12").is_dir()
    _same_weights(resumed, uninterrupted)


def test_no_complete_checkpoint_starts_over(pairs, uninterrupted, tmp_path, monkeypatch):
    calls = {"n": 0}
    save = transformers.Trainer._save_optimizer_and_scheduler

    def first_fails(self, output_dir):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return save(self, output_dir)

    monkeypatch.setattr(transformers.Trainer, "_save_optimizer_and_scheduler", first_fails)
    with pytest.raises(KeyboardInterrupt):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="resumed from the start"):
        again = ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    assert json.loads((tmp_path / "metrics.json").read_text())["resumed_from"] is None
    _same_weights(again, uninterrupted)


def test_a_full_disk_is_one_clear_error_and_the_rerun_resumes(pairs, uninterrupted, tmp_path, monkeypatch):
    _fail_while_writing_step_12(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match=rf"the disk holding {tmp_path} is full \(.* GiB free\); this run needs "
                                      r"about .* GiB \(2 checkpoints of .* GiB and the final model\)") as err:
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    assert err.value.__cause__ is None and not (tmp_path / "metrics.json").exists()
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="resumed from checkpoint-6"):
        _same_weights(ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL), uninterrupted)


@pytest.mark.parametrize("option, value", [("learning_rate", math.nan), ("learning_rate", 1e6),
                                           ("learning_rate", math.inf), ("epochs", math.inf),
                                           ("batch_size", 2.5), ("warmup_ratio", math.nan),
                                           ("weight_decay", -1.0), ("head_learning_rate", math.nan),
                                           ("seed", -1), ("isobn", "yes"), ("max_steps", 0)])
def test_every_option_is_checked_finite_and_in_range(pairs, tmp_path, option, value):
    with pytest.raises(ValueError, match=rf"option {option} must be .*got {value!r}"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, **{**SMALL, option: value})
    assert not (tmp_path / "options.json").exists()


def _poison_after(monkeypatch, steps):
    """NaN weights after ``steps`` optimizer steps: what a too-large learning rate ends in."""
    step = Adam.step

    def poisoned(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        self.steps = getattr(self, "steps", 0) + 1
        if self.steps == steps:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(math.nan)
        return out

    monkeypatch.setattr(Adam, "step", poisoned)


def test_a_diverged_run_stops_with_the_step_and_is_not_saved(pairs, tmp_path, monkeypatch):
    _poison_after(monkeypatch, 4)
    message = r"diverged at step 5: the training loss is nan\. Likely cause: a learning rate too high .*1e-4"
    with pytest.raises(FinetuneDiverged, match=message):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "model").exists()


def test_no_checkpoint_of_non_finite_weights_is_written(pairs, tmp_path, monkeypatch):
    _poison_after(monkeypatch, 6)
    with pytest.raises(FinetuneDiverged, match=r"diverged at step 6: 1 weight tensors hold NaN or Inf"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    assert not (tmp_path / "checkpoints" / "checkpoint-6").exists()


def test_a_diverged_run_finished_by_an_earlier_version_is_not_reused(pairs, uninterrupted, tmp_path):
    import shutil

    shutil.copytree(uninterrupted.out_dir, tmp_path / "old")
    metrics = json.loads((tmp_path / "old" / "metrics.json").read_text())
    metrics["final"]["eval_loss"] = math.nan  # what a diverged run recorded before the guard
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(FinetuneDiverged, match="the evaluation loss is nan"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path / "old", **SMALL)
