"""Two fine-tunings in one folder at once: the second is refused at once, before it trains
anything, and the command line says so in one line (two studies: test_study_checks.py)."""

import ftlens
import pytest
from ftlens._util import files
from ftlens.data.generated import generate_pairs


def test_a_second_finetune_in_a_busy_folder_is_refused(tmp_path):
    pairs = generate_pairs(16), generate_pairs(8, seed=1)
    with files.exclusive_lock(tmp_path, "held by the test"):
        with pytest.raises(RuntimeError, match="another process is fine-tuning in"):
            ftlens.finetune("minilm", "pair", *pairs, tmp_path, max_steps=1, batch_size=4, progress=False)
    assert not (tmp_path / "options.json").exists()


def test_the_cli_says_so_in_one_line(tmp_path, capsys):
    import json

    from ftlens.cli import main

    data = tmp_path / "pairs.jsonl"
    rows = [{"premise": p.premise, "hypothesis": p.hypothesis, "label": p.label} for p in generate_pairs(16)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "run").mkdir()
    with files.exclusive_lock(tmp_path / "run", "held"):
        code = main(["finetune", "minilm", "pair", str(data), str(data), "--out", str(tmp_path / "run"),
                     "--max-steps", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == [f"ftlens: error: another process is fine-tuning in {tmp_path / 'run'}; wait "
                                 "for it to finish (then rerun to reuse its result), or pass another out_dir"]
