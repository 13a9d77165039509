"""The command line end to end: a store written by ``ftlens store`` probed by ``ftlens
probe``, ``ftlens compare`` writing its result, figure and CSV, a data ``--limit``, and
``--help`` of every command listing the choices of its options."""

import json

import ftlens.finetuning
import numpy as np
import pytest
from ftlens import LayerComparison
from ftlens.cli import build_parser, main
from ftlens.data.generated import generate_sentences


def _conllu(path, sentences):
    lines = []
    for s in sentences:
        lines.append(f"# text = {s.text}")
        for i, word in enumerate(s.words):
            lines.append("\t".join([str(i + 1), word, "_", s.upos[i], s.xpos[i], "_", str(s.heads[i]),
                                    s.deprels[i], "_", "_"]))
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    return (_conllu(folder / "train.conllu", generate_sentences(40, seed=1)),
            _conllu(folder / "dev.conllu", generate_sentences(30, seed=2)))


def test_store_then_probe_on_the_command_line(data, tmp_path, capsys):
    train, dev = data
    assert main(["store", "minilm", str(train), "--out", str(tmp_path / "train"), "--rows", "words",
                 "--no-progress"]) == 0
    assert main(["store", "minilm", str(dev), "--limit", "12", "--out", str(tmp_path / "dev"),
                 "--rows", "words", "--dtype", "float32", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    words = sum(len(s.words) for s in generate_sentences(30, seed=2)[:12])
    assert f"store written to {tmp_path / 'dev'}: {words} rows x 7 layers x 384" in printed
    assert main(["probe", str(tmp_path / "train"), str(tmp_path / "dev"), "--tasks", "upos", "--no-control",
                 "--l2", "1e-3", "--out", str(tmp_path / "probe.json"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "probe.json").read_text())
    assert result["n_eval"] == {"upos": words} and len(result["layers"]) == 7
    assert np.nanmin(np.array(result["scores"]["accuracy"], dtype=float)) > 0.5


def test_compare_on_the_command_line_writes_result_figure_and_csv(data, tmp_path, capsys):
    _, dev = data
    out = tmp_path / "cmp"
    assert main(["compare", "minilm", "minilm", str(dev), "--limit", "20", "--measures", "rsa", "cka",
                 "--ci", "0.9", "--ci-groups", "4", "--rows", "words", "--out", str(out),
                 "--no-progress"]) == 0
    result = LayerComparison.load(out / "comparison.json")
    assert result.n_inputs == 20 and result.rows == "words" and result.ci == 0.9
    np.testing.assert_allclose(result.cka, 1.0, atol=1e-6)  # a model against itself
    assert (out / "similarity.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "similarity.csv").read_text() == result.csv()
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["layer", "rsa", "cka"] and "comparison.json" in printed


def test_finetune_seeds_on_the_command_line(tmp_path, capsys):
    from ftlens.data.generated import generate_pairs

    lines = ["index\tsentence1\tsentence2\tlabel"]
    for name, pairs in (("train", generate_pairs(40, seed=0)), ("dev", generate_pairs(16, seed=1))):
        rows = [f"{i}\t{p.premise}\t{p.hypothesis}\t{p.label}" for i, p in enumerate(pairs)]
        (tmp_path / f"{name}.tsv").write_text("\n".join(lines + rows) + "\n")
    common = ["finetune", "minilm", "pair", str(tmp_path / "train.tsv"), str(tmp_path / "dev.tsv"), "--out",
              str(tmp_path / "runs"), "--max-steps", "2", "--batch-size", "8", "--max-length", "40",
              "--no-progress"]
    tracked = ["--track", str(tmp_path / "dev.tsv"), "--track-limit", "8", "--track-every", "1"]
    assert main([*common, "--seeds", "3", "1", "--workers", "1", *tracked]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["seed", "eval_accuracy"]
    assert [line.split()[0] for line in printed.splitlines()[1:3]] == ["3", "1"]
    assert "Multi-Bootstrap interval over seeds and 16 examples" in printed
    assert (tmp_path / "runs" / "seed-3" / "scores.json").is_file()
    trajectory = ftlens.finetuning.load_trajectory(tmp_path / "runs" / "seed-1")
    assert trajectory.steps == [0, 1, 2] and trajectory.n_inputs == 8
    with pytest.raises(SystemExit):
        main([*common, "--track-every", "5"])
    assert "give the tracking data with --track FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--seeds", "3", "3"])
    assert "seeds [3] appear more than once" in capsys.readouterr().err


def test_bad_data_is_refused_with_the_fix(data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["store", "minilm", str(tmp_path / "nothing.conllu"), "--out", str(tmp_path / "s")])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "minilm", "minilm", str(data[1].with_suffix(".xyz")), "--out", str(tmp_path / "c")])
    assert "pass --format" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["store", "minilm", str(data[1]), "--limit", "0", "--out", str(tmp_path / "s")])
    assert "--limit must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "shown"), [
    ("finetune", ["{fp32,bf16,fp16}", "{layer,batch,l2}", "{mst,greedy}", "--limit", "--keep-checkpoints"]),
    ("compare", ["{diagonal,all}", "{tokens,words,cls,mean}", "--limit", "--threads"]),
    ("store", ["{float16,float32}", "{first,last,mean}", "--limit"]),
    ("probe", ["{logistic,ridge}", "--threads"]),
    ("ablate", ["{freeze,revert,reinit}", "{above,below}", "--limit"]),
])
def test_help_lists_the_choices_and_a_line_per_option(command, shown):
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    text = sub.format_help()
    for item in shown:
        assert item in text, item
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no description"
