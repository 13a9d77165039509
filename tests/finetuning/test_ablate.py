"""ftlens.ablate on the packaged MiniLM and generated pairs, a few steps per run: each
sweep's table, JSON and plot; reverting no layer keeps the fine-tuned metric and reverting
every layer gives back the base encoder's weights exactly."""

import json

import ftlens
import pytest
import torch
from ftlens.data.generated import generate_pairs
from ftlens.finetuning import evaluate, load_task_model, revert_layers

FEW = dict(max_steps=4, batch_size=8, max_length=40, learning_rate=1e-4, progress=False)


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(64, seed=0), generate_pairs(24, seed=1)


def test_freeze_sweep_writes_table_and_plot_and_is_reused(pairs, tmp_path):
    result = ftlens.ablate("freeze", "minilm", "pair", *pairs, tmp_path, ks=[0, 3], **FEW)
    assert [row["k"] for row in result.rows] == [0, 3] and result.metric == "accuracy"
    for row in result.rows:
        assert row["value"] == row["metrics"]["eval_accuracy"]
        options = json.loads((tmp_path / f"freeze-{row['k']}" / "options.json").read_text())["options"]
        assert options["freeze_bottom"] == row["k"]
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert ftlens.AblationResult.from_dict(saved) == result
    assert (tmp_path / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = ftlens.ablate("freeze", "minilm", "pair", *pairs, tmp_path, ks=[0, 3], **FEW)
    assert again.rows == result.rows
    assert "freeze ablation" in result.table()


def test_reinit_sweep_fine_tunes_with_the_top_layers_reinitialized(pairs, tmp_path):
    result = ftlens.ablate("reinit", "minilm", "pair", *pairs, tmp_path, ks=[2], **FEW)
    options = json.loads((tmp_path / "reinit-2" / "options.json").read_text())["options"]
    assert options["reinit_top"] == 2 and len(result.rows) == 1


def test_revert_keeps_the_metric_at_zero_and_gives_the_base_back_at_every_layer(pairs, tmp_path):
    train, evaluation = pairs
    result = ftlens.ablate("revert", "minilm", "pair", train, evaluation, tmp_path, ks=[0, 3, 6],
                           side="below", **FEW)
    tuned = json.loads((tmp_path / "finetuned" / "metrics.json").read_text())["final"]
    assert result.rows[0]["value"] == tuned["eval_accuracy"]
    assert result.rows[0]["metrics"]["eval_loss"] == pytest.approx(tuned["eval_loss"], rel=1e-6)

    model = load_task_model(tmp_path / "finetuned" / "model")
    base, tokenizer = ftlens.load_model("minilm", device="cpu")
    revert_layers(model, base, 6, side="below")
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, base.state_dict()[name]), name
    head_only = evaluate(model, "pair", evaluation, tokenizer, **FEW)
    assert result.rows[2]["metrics"]["eval_loss"] == pytest.approx(head_only["eval_loss"], rel=1e-6)


def test_ablation_bad_input(pairs, tmp_path):
    with pytest.raises(ValueError, match=r"unknown ablation 'prune'; the ablations are \('freeze', 'revert'"):
        ftlens.ablate("prune", "minilm", "pair", *pairs, tmp_path)
    with pytest.raises(ValueError, match=r"every k must be an integer in 0\.\.6 \(the model has 6 layers\)"):
        ftlens.ablate("freeze", "minilm", "pair", *pairs, tmp_path, ks=[2, 7])
    with pytest.raises(ValueError, match="is what the sweep sets for each k"):
        ftlens.ablate("freeze", "minilm", "pair", *pairs, tmp_path, ks=[1], freeze_bottom=2)
    with pytest.raises(FileNotFoundError, match="holds no finished ftlens.finetune run"):
        ftlens.ablate("revert", "minilm", "pair", *pairs, tmp_path, ks=[1], finetuned=tmp_path)


def write_pairs(path, pairs) -> None:
    rows = ["sentence1\tsentence2\tlabel"] + [f"{p.premise}\t{p.hypothesis}\t{p.label}" for p in pairs]
    path.write_text("\n".join(rows) + "\n")


def test_command_line_finetune_and_ablate(pairs, tmp_path, capsys):
    from ftlens.cli import main

    train, evaluation = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    write_pairs(train, pairs[0])
    write_pairs(evaluation, pairs[1])
    flags = ["--max-steps", "2", "--batch-size", "8", "--max-length", "40", "--no-progress"]
    assert main(["finetune", "minilm", "pair", str(train), str(evaluation), "--out", str(tmp_path / "run"),
                 *flags, "--no-adam-bias-correction"]) == 0
    assert "eval_accuracy" in capsys.readouterr().out
    options = json.loads((tmp_path / "run" / "options.json").read_text())["options"]
    assert options["max_steps"] == 2 and options["adam_bias_correction"] is False
    sweep = tmp_path / "sweep"
    assert main(["ablate", "revert", "minilm", "pair", str(train), str(evaluation), "--out", str(sweep),
                 "--ks", "0", "6", "--finetuned", str(tmp_path / "run"), *flags]) == 0
    assert "revert ablation" in capsys.readouterr().out
    assert [row["k"] for row in json.loads((sweep / "ablation.json").read_text())["rows"]] == [0, 6]
    with pytest.raises(SystemExit):
        main(["finetune", "minilm", "parsing", str(train), str(evaluation), "--out", str(tmp_path / "bad")])
    assert "expected 10 tab-separated columns" in capsys.readouterr().err


def test_freeze_takes_a_finished_run_with_the_same_options_as_its_k_zero(pairs, tmp_path):
    run = ftlens.finetune("minilm", "pair", *pairs, tmp_path / "run", **FEW)
    sweep = ftlens.ablate("freeze", "minilm", "pair", *pairs, tmp_path / "sweep", ks=[0, 6],
                          finetuned=tmp_path / "run", **FEW)
    assert sweep.rows[0]["model_dir"] == str(run.model_dir) and sweep.rows[0]["metrics"] == run.metrics
    assert not (tmp_path / "sweep" / "freeze-0").exists()  # no second training of the same run
    other = ftlens.ablate("freeze", "minilm", "pair", *pairs, tmp_path / "other", ks=[0],
                          finetuned=tmp_path / "run", **{**FEW, "learning_rate": 3e-5})
    # other options: trained
    assert other.rows[0]["model_dir"] == str(tmp_path / "other" / "freeze-0" / "model")


def test_the_sweep_carries_the_no_learning_baseline(pairs, tmp_path):
    result = ftlens.ablate("reinit", "minilm", "pair", *pairs, tmp_path, ks=[6], **FEW)
    labels = [p.label for p in pairs[1]]
    majority = max(labels.count(label) for label in set(labels)) / len(labels)
    assert result.baseline["value"] == majority and result.baseline["n"] == len(labels)
    assert f"baseline {100 * majority:.2f}" in result.table()
    (ax,) = result.plot().axes
    assert ax.get_ylim() == (0.0, 100.0)
    assert any(line.get_label().startswith("no learning") and line.get_ydata()[0] == 100 * majority
               for line in ax.get_lines())


def test_a_sweep_over_seeds_bootstraps_each_k_and_reuses_the_fine_tuned_seeds(pairs, tmp_path):
    import numpy as np
    from ftlens.similarity.bootstrap import multibootstrap

    tuned = ftlens.finetune("minilm", "pair", *pairs, tmp_path / "tuned", seeds=[5, 1], workers=1, **FEW)
    result = ftlens.ablate("freeze", "minilm", "pair", *pairs, tmp_path / "freeze", ks=[0, 6], seeds=[5, 1],
                           workers=1, finetuned=tuned.out_dir, **FEW)
    assert result.seeds == [5, 1] and [row["k"] for row in result.rows] == [0, 6]
    first = result.rows[0]
    assert first["values"] == pytest.approx(tuned.values().tolist())  # k = 0: the fine-tuned seeds
    assert all(d.startswith(str(tuned.out_dir)) for d in first["model_dirs"])
    assert not (tmp_path / "freeze" / "freeze-0").exists()
    for row in result.rows:
        assert row["value"] == pytest.approx(np.mean(row["values"]))
        folder = tmp_path / "freeze" / f"freeze-{row['k']}" if row["k"] else tuned.out_dir
        scores = [ftlens.FinetuneResult(folder / f"seed-{s}", {}).scores() for s in (5, 1)]
        want = multibootstrap(np.stack([s.num["accuracy"] for s in scores]), seeds=[5, 1])
        assert row["bootstrap"] == pytest.approx(want.to_dict())
    saved = json.loads((tmp_path / "freeze" / "ablation.json").read_text())
    assert ftlens.AblationResult.from_dict(saved) == result
    reverted = ftlens.ablate("revert", "minilm", "pair", *pairs, tmp_path / "revert", ks=[6], seeds=[5, 1],
                             finetuned=tuned.out_dir, **FEW)
    assert reverted.rows[0]["values"] == pytest.approx(tuned.values().tolist())  # nothing above layer 6
    with pytest.raises(ValueError, match=r"seeds \[1\] appear more than once"):
        ftlens.ablate("freeze", "minilm", "pair", *pairs, tmp_path / "bad", ks=[0], seeds=[1, 1], **FEW)
