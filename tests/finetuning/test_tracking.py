"""Layer trajectories while a run trains (track=): the last checkpoint equals
compare_models on the final model, step 0 is the base, frozen layers stay put, an
interrupted run continues its trajectory without gaps or duplicates, base rows beyond the
memory budget stream from disk, and bad tracking input is refused by name."""

import json
import shutil

import ftlens
import ftlens.finetuning
import numpy as np
import pytest
import transformers
from ftlens.data import generate_sentences
from ftlens.data.generated import generate_pairs
from ftlens.finetuning import TrackOptions, load_trajectory
from ftlens.finetuning.trajectory import BLOCKS

TRACKED = dict(max_steps=8, batch_size=8, max_length=40, eval_steps=4, save_steps=4, learning_rate=1e-4,
               progress=False)
MEASURES = ("rsa", "cka")


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(96, seed=0), generate_pairs(24, seed=1)


@pytest.fixture(scope="module")
def sentences():
    return generate_sentences(24, seed=2)


@pytest.fixture(scope="module")
def tracked(pairs, sentences, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked")
    run = ftlens.finetune("minilm", "pair", *pairs, out, track={"data": sentences, "every": 2}, **TRACKED)
    return run, load_trajectory(out)


def test_the_last_checkpoint_is_compare_models_and_step_0_the_base(tracked, sentences):
    run, t = tracked
    assert t.steps == [0, 2, 4, 6, 8] and len(t.layers) == 7 and t.measures == list(MEASURES)
    final = ftlens.compare_models("minilm", run.model_dir, sentences, MEASURES, progress=False)
    assert t.n_rows == final.n_rows and t.n_inputs == len(sentences)
    for measure in MEASURES:
        np.testing.assert_allclose(t.values[measure][-1], final.values[measure], rtol=0, atol=1e-6)
        np.testing.assert_allclose(t.values[measure][0], 1.0, rtol=0, atol=1e-6)
        assert t.values[measure][-1, -1] < 1 - 1e-4  # the top layer moved
    for block in BLOCKS:
        first = t.change[block][0]
        assert np.all(first[np.isfinite(first)] == 0)
    assert np.all(t.change["total"][-1] > 0) and np.all(np.diff(t.change["total"][:, -1]) > 0)
    assert np.isnan(t.change["attention"][:, 0]).all() and np.isfinite(t.change["layer_norm"][:, 0]).all()
    assert len(t.records()) == 5 * 7 * (len(MEASURES) + len(BLOCKS))


def test_a_trajectory_saves_loads_and_plots(tracked, tmp_path):
    _, t = tracked
    t.save(tmp_path / "t.json")
    back = ftlens.finetuning.Trajectory.load(tmp_path / "t.json")
    assert back.steps == t.steps
    assert np.array_equal(back.change["attention"], t.change["attention"], equal_nan=True)
    heat, curves, _ = t.plot(tmp_path / "t.png", measure="rsa").axes
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert heat.images[0].get_clim() == (0, 1)  # a fixed scale: small changes are not blown up
    assert len(curves.lines) == 7 and curves.get_ylim()[0] == 0
    two = ftlens.finetuning.plot_trajectories([t, t.until(4)], tmp_path / "two.png")
    assert len(two.axes[1].collections) == 7  # each layer's band over the runs, on their common steps


def test_frozen_layers_stay_at_the_base_at_every_step(pairs, sentences, tmp_path):
    ftlens.finetune("minilm", "pair", *pairs, tmp_path, freeze_bottom=2,
                    track={"data": sentences, "every": 4}, **TRACKED)
    t = load_trajectory(tmp_path)
    assert t.steps == [0, 4, 8]
    for measure in MEASURES:
        np.testing.assert_allclose(t.values[measure][:, :3], 1.0, rtol=0, atol=1e-6)
    assert np.all(t.change["total"][:, :3] == 0) and np.all(t.change["total"][-1, 3:] > 0)


def test_an_interrupted_run_continues_its_trajectory(pairs, sentences, tracked, tmp_path, monkeypatch):
    save = transformers.Trainer._save_optimizer_and_scheduler

    def fail_at_step_8(self, output_dir):
        if output_dir.endswith("checkpoint-8"):
            raise KeyboardInterrupt
        return save(self, output_dir)

    track = {"data": sentences, "every": 2}
    monkeypatch.setattr(transformers.Trainer, "_save_optimizer_and_scheduler", fail_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, track=track, **TRACKED)
    assert load_trajectory(tmp_path).steps == [0, 2, 4, 6, 8]  # recorded past the last checkpoint (4)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="resumed from checkpoint-4"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, track=track, **TRACKED)
    assert json.loads((tmp_path / "metrics.json").read_text())["resumed_from"] == "checkpoint-4"
    resumed, whole = load_trajectory(tmp_path), tracked[1]
    assert resumed.steps == whole.steps
    for table in ("values", "change"):
        for key, values in getattr(whole, table).items():
            np.testing.assert_allclose(getattr(resumed, table)[key], values, rtol=0, atol=1e-6)


def test_base_rows_beyond_the_memory_budget_stream_from_disk(pairs, sentences, tracked, tmp_path):
    track = {"data": sentences, "every": 8, "memory_budget": 1}
    ftlens.finetune("minilm", "pair", *pairs, tmp_path, track=track, **TRACKED)
    t, whole = load_trajectory(tmp_path), tracked[1]
    assert t.steps == [0, 8] and not list(tmp_path.glob(".track-base-*"))
    for measure in MEASURES:
        np.testing.assert_allclose(t.values[measure], whole.values[measure][[0, -1]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("track, error, message", [
    ({"data": ["a b"], "every": 0}, ValueError, r"every \(of track=\) must be a whole number of optimizer"),
    ({"every": 2}, ValueError, r"track= needs its tracking set"),
    ([], ValueError, r"the tracking set has no inputs"),
    ({"data": ["a b"], "rdm": "euclidean"}, ValueError, r"rsa with rdm=.euclidean. needs .* pair of rows"),
    ({"data": ["a b"], "evry": 2}, TypeError, r"unknown option 'evry' \(did you mean 'every'\?\)"),
])
def test_bad_tracking_input_is_refused_before_training(pairs, tmp_path, track, error, message):
    with pytest.raises(error, match=message):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, track=track, **TRACKED)
    assert not (tmp_path / "options.json").exists()


def test_a_finished_run_keeps_its_trajectory_and_refuses_another(pairs, sentences, tracked, tmp_path):
    run, _ = tracked
    untracked = tmp_path / "untracked"
    shutil.copytree(run.out_dir, untracked)
    (untracked / "trajectory.json").unlink()
    with pytest.raises(ValueError, match=r"finished without track=, and a trajectory cannot be recorded"):
        ftlens.finetune("minilm", "pair", *pairs, untracked, track=sentences, **TRACKED)
    again = ftlens.finetune("minilm", "pair", *pairs, run.out_dir, track={"data": sentences, "every": 2},
                            **TRACKED)
    assert again.reused
    with pytest.raises(ValueError, match=r"recorded its trajectory with other tracking settings \(every\)"):
        ftlens.finetune("minilm", "pair", *pairs, run.out_dir, track={"data": sentences, "every": 4},
                        **TRACKED)
    assert TrackOptions().every == 50 and TrackOptions().measures == MEASURES


def test_every_seed_records_its_trajectory_side_by_side(pairs, sentences, tmp_path):
    runs = ftlens.finetune("minilm", "pair", *pairs, tmp_path, seeds=[0, 1], workers=2,
                           track={"data": sentences, "every": 4, "measures": "cka"}, **TRACKED)
    first, second = runs.trajectories()
    assert first.steps == second.steps == [0, 4, 8] and first.measures == ["cka"]
    np.testing.assert_allclose(first.values["cka"][0], second.values["cka"][0], rtol=0, atol=1e-12)
    assert not np.allclose(first.values["cka"][-1], second.values["cka"][-1], rtol=0, atol=1e-9)


def test_re_initialized_layers_start_away_from_the_base(pairs, sentences, tmp_path):
    long = " ".join(["word"] * 600)  # beyond the model's 512 tokens: measured truncated, and said so
    with pytest.warns(UserWarning, match="1 of the 25 tracking inputs are longer than 512 tokens"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, reinit_top=1,
                        track={"data": [*sentences, long], "every": 8}, **TRACKED)
    t = load_trajectory(tmp_path)
    assert t.steps == [0, 8]
    assert t.values["cka"][0, -1] < 0.9 and t.change["total"][0, -1] > 0.5  # the top layer, new at step 0
    np.testing.assert_allclose(t.values["cka"][0, :-1], 1.0, rtol=0, atol=1e-6)
    assert np.all(t.change["total"][0, :-1] == 0)
