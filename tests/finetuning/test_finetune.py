"""ftlens.finetune on the packaged MiniLM and the generated sentence pairs, a few steps:
it learns, saves a model load_model reads, reuses a finished run, resumes an interrupted
one to the same weights (from the newest complete checkpoint after a kill or a full disk
while one was written), stops a diverging run before anything is saved, keeps frozen
layers bit-identical, and refuses bad input."""

import errno
import json
import math
import shutil

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
def run(pairs, tmp_path_factory):
    return ftlens.finetune("minilm", "pair", *pairs, tmp_path_factory.mktemp("run"), **SMALL)


def test_finetune_learns_saves_and_reloads(run):
    assert [entry["step"] for entry in run.history] == [6, 12]
    assert run.history[-1]["eval_loss"] < run.history[0]["eval_loss"]
    assert run.metrics["eval_accuracy"] == run.history[-1]["eval_accuracy"] and not run.reused
    recorded = json.loads((run.out_dir / "metrics.json").read_text())
    assert recorded["seed"] == 0 and set(recorded["versions"]) == {"ftlens", "torch", "transformers"}
    head = json.loads((run.model_dir / "head.json").read_text())
    assert head["kind"] == "classifier"
    assert head["options"]["labels"] == ["contradiction", "entailment", "neutral"]
    encoder, tokenizer = ftlens.load_model(run.model_dir, device="cpu")
    assert type(encoder).__name__ == "BertModel" and tokenizer("a b")["input_ids"]


def test_the_run_keeps_each_eval_examples_prediction_and_share_of_the_metric(run, pairs):
    scores = run.scores()
    right, over = scores.num["accuracy"], scores.den["accuracy"]
    assert len(right) == len(over) == len(scores.predictions) == len(pairs[1])
    assert scores.scale * right.sum() / over.sum() == pytest.approx(run.metrics["eval_accuracy"], abs=1e-12)
    gold = [p.label for p in pairs[1]]
    assert right.tolist() == [float(a == b) for a, b in zip(scores.predictions, gold, strict=True)]


def test_a_finished_run_without_scores_gets_them_from_its_saved_model(run, pairs, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run.out_dir, old)
    (old / "scores.json").unlink()
    again = ftlens.finetune("minilm", "pair", *pairs, old, **SMALL)
    assert again.reused and again.scores().to_dict() == run.scores().to_dict()


def test_finished_run_is_reused_and_other_settings_refused(run, pairs):
    again = ftlens.finetune("minilm", "pair", *pairs, run.out_dir, **SMALL)
    assert again.reused and again.metrics == run.metrics
    with pytest.raises(ValueError, match=r"a fine-tuning run with other settings \(\['options'\] differ\)"):
        ftlens.finetune("minilm", "pair", *pairs, run.out_dir, **{**SMALL, "learning_rate": 3e-5})
    train, evaluation = pairs
    other = generate_pairs(len(train), seed=5)  # as many pairs, other text
    with pytest.raises(ValueError, match=r"other settings \(\['train'\] differ\)"):
        ftlens.finetune("minilm", "pair", other, evaluation, run.out_dir, **SMALL)


def test_a_run_from_before_an_option_existed_is_reused(run, pairs):
    """A finished run's options.json lacks options added since: they held their defaults."""
    recorded = json.loads((run.out_dir / "options.json").read_text())
    older = {**recorded, "options": {k: v for k, v in recorded["options"].items() if k != "punctuation"}}
    (run.out_dir / "options.json").write_text(json.dumps(older))
    try:
        assert ftlens.finetune("minilm", "pair", *pairs, run.out_dir, **SMALL).reused
    finally:
        (run.out_dir / "options.json").write_text(json.dumps(recorded))


def test_interrupted_run_resumes_to_the_same_weights(run, pairs, tmp_path, monkeypatch):
    import transformers

    calls = {"n": 0}
    step = transformers.Trainer.training_step

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:  # after the checkpoint at step 6
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "training_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    assert (tmp_path / "checkpoints" / "checkpoint-6").is_dir() and not (tmp_path / "metrics.json").exists()
    monkeypatch.setattr(transformers.Trainer, "training_step", step)
    resumed = ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    assert json.loads((tmp_path / "metrics.json").read_text())["resumed_from"] == "checkpoint-6"
    mine, theirs = (load_task_model(r.model_dir) for r in (resumed, run))
    for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_freeze_bottom_leaves_embeddings_and_bottom_layers_as_they_were(pairs, tmp_path):
    base, _ = ftlens.load_model("minilm", device="cpu")
    options = {**SMALL, "max_steps": 3, "freeze_bottom": 2}
    result = ftlens.finetune("minilm", "pair", *pairs, tmp_path, **options)
    tuned, _ = ftlens.load_model(result.model_dir, device="cpu")
    base_state = base.state_dict()
    for name, value in tuned.state_dict().items():
        if name.startswith(("embeddings.", "encoder.layer.0.", "encoder.layer.1.")):
            assert torch.equal(value, base_state[name]), name
    top = "encoder.layer.5.output.dense.weight"
    assert not torch.equal(tuned.state_dict()[top], base_state[top])


def test_the_fine_tuned_folder_enters_compare_models_and_the_store_as_it_is(run, pairs, tmp_path):
    sentences = [p.premise for p in pairs[1][:12]]
    comparison = ftlens.compare_models("minilm", run.model_dir, sentences, progress=False)
    assert comparison.cka.shape == (7,) and comparison.cka[-1] < 1.0 - 1e-6
    store = ftlens.store.write(run.model_dir, sentences, tmp_path / "store", progress=False)
    assert store.n_layers == 7 and store.n_rows == comparison.n_rows


def test_evaluate_scores_with_the_models_own_labels(run, pairs):
    from ftlens.finetuning import evaluate

    model = load_task_model(run.model_dir)
    tokenizer = ftlens.load_model(run.model_dir, device="cpu")[1]
    neutral = [p for p in pairs[1] if p.label == "neutral"]  # one label of three: its index must not shift
    metrics = evaluate(model, "pair", neutral, tokenizer, max_length=40)
    batch = tokenizer([p.premise for p in neutral], [p.hypothesis for p in neutral], padding=True,
                      truncation=True, max_length=40, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch)["logits"].argmax(-1)
    labels = model.head_options["labels"]
    right = sum(labels[i] == "neutral" for i in predicted)
    assert metrics["eval_accuracy"] == pytest.approx(right / len(neutral))
    with pytest.raises(ValueError, match=r"labels \['maybe'\] are not among the model's labels"):
        evaluate(model, "pair", [ftlens.data.SentencePair("a", "b", "maybe")], tokenizer)


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
        pairs, run, tmp_path, monkeypatch):
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
    _same_weights(resumed, run)


def test_no_complete_checkpoint_starts_over(pairs, run, tmp_path, monkeypatch):
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
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["resumed_from"] is None and 0 < saved["seconds"] < 600  # the call that finished it
    _same_weights(again, run)


def test_a_full_disk_is_one_clear_error_and_the_rerun_resumes(pairs, run, tmp_path, monkeypatch):
    _fail_while_writing_step_12(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match=rf"the disk holding {tmp_path} is full \(.* GiB free\); this run needs "
                                      r"about .* GiB \(2 checkpoints of .* GiB and the final model\)") as err:
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL)
    assert err.value.__cause__ is None and not (tmp_path / "metrics.json").exists()
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="resumed from checkpoint-6"):
        _same_weights(ftlens.finetune("minilm", "pair", *pairs, tmp_path, **SMALL), run)


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


def test_a_diverged_run_finished_by_an_earlier_version_is_not_reused(pairs, run, tmp_path):
    shutil.copytree(run.out_dir, tmp_path / "old")
    metrics = json.loads((tmp_path / "old" / "metrics.json").read_text())
    metrics["final"]["eval_loss"] = math.nan  # what a diverged run recorded before the guard
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(FinetuneDiverged, match="the evaluation loss is nan"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path / "old", **SMALL)
