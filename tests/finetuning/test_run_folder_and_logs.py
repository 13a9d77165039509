"""What a finished run keeps (no Trainer checkpoints unless asked), the Trainer's logs as
lines of the ftlens.finetuning logger (never raw dicts on stdout), and each task's
no-learning baseline against a brute-force count."""

import logging

import ftlens
import pytest
from ftlens.data.generated import generate_pairs, generate_sentences
from ftlens.finetuning.logs import log_line
from ftlens.finetuning.options import FinetuneOptions
from ftlens.finetuning.run import get_task

FEW = dict(max_steps=2, batch_size=8, max_length=40, learning_rate=1e-4)


@pytest.mark.parametrize("keep", [False, True])
def test_checkpoints_go_when_a_run_finishes_unless_kept(tmp_path, keep):
    pairs = generate_pairs(32, seed=0), generate_pairs(12, seed=1)
    ftlens.finetune("minilm", "pair", *pairs, tmp_path, progress=False, keep_checkpoints=keep, **FEW)
    assert (tmp_path / "model").is_dir() and (tmp_path / "metrics.json").is_file()
    assert bool(list(tmp_path.glob("checkpoints/checkpoint-*"))) == keep
    again = ftlens.finetune("minilm", "pair", *pairs, tmp_path, progress=False, **FEW)
    assert again.reused  # a finished run is reused without its checkpoints


def test_training_logs_are_lines_of_the_logger_not_dicts_on_stdout(tmp_path, capsys, caplog):
    pairs = generate_pairs(32, seed=0), generate_pairs(12, seed=1)
    with caplog.at_level(logging.INFO, logger="ftlens.finetuning"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, progress=True, **FEW)
    out = capsys.readouterr().out
    assert "{'" not in out and "eval_accuracy" not in out
    lines = [r.getMessage() for r in caplog.records if r.name == "ftlens.finetuning"]
    assert any(line.startswith("step 2") and "eval accuracy" in line for line in lines), lines


def test_a_log_line_is_readable():
    line = log_line(76, {"loss": 2.06912, "grad_norm": 1.5, "learning_rate": 3e-5, "epoch": 2.0,
                         "eval_runtime_per_second": 9.0, "total_flos": 1.0})
    assert line == "step 76, epoch 2: loss 2.069, grad norm 1.5, learning rate 3e-05"


def test_the_pair_baseline_is_the_majority_class():
    data = generate_pairs(30, seed=3)
    baseline = get_task("pair").baseline(data, FinetuneOptions())
    counts = {}
    for pair in data:
        counts[pair.label] = counts.get(pair.label, 0) + 1
    assert baseline["value"] == max(counts.values()) / 30 and baseline["n"] == 30
    assert max(counts, key=counts.get) in baseline["rule"]


@pytest.mark.parametrize("punctuation", ["upos", "none"])
def test_the_parsing_baseline_is_the_better_neighbour_attachment(punctuation):
    sentences = generate_sentences(20, seed=2)
    baseline = get_task("parsing").baseline(sentences, FinetuneOptions(punctuation=punctuation))
    relations = [r for s in sentences for r in s.deprels]
    label = max(set(relations), key=relations.count)
    best = 0.0
    for offset in (-1, 1):  # the word before, the word after
        right = total = 0
        for s in sentences:
            n = len(s.words)
            for i in range(n):
                if punctuation == "upos" and s.upos[i] == "PUNCT":
                    continue
                head = i + 1 + offset
                head = head if 1 <= head <= n else 0
                total += 1
                right += head == s.heads[i] and s.deprels[i] == label
        best = max(best, 100.0 * right / total)
    assert baseline["value"] == pytest.approx(best, abs=1e-12)
    assert baseline["n"] == sum(1 for s in sentences for u in s.upos if punctuation == "none" or u != "PUNCT")
