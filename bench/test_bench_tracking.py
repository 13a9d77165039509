"""What tracking costs a run: NLI fine-tuning of MiniLM on 3,200 MNLI training pairs (100
steps of 32, the real run's settings) with and without track= on 500 UD EWT dev sentences
every 50 steps (checkpoints at 0, 50 and 100: one more per 100 steps than a long run
pays), side by side in one process, on the machine's cores."""

import os
from pathlib import Path

import ftlens
import pytest
from conftest import machine, report, timed
from ftlens.data import read_conllu, read_pairs
from ftlens.finetuning import load_trajectory

STEPS, EVERY, TRACKED = 100, 50, 500
OPTIONS = dict(learning_rate=5e-5, batch_size=32, max_length=128, max_steps=STEPS, progress=False)


@pytest.fixture(scope="module")
def data():
    root = Path(os.environ["FTLENS_DATA_DIR"])
    train = read_pairs(root / "mnli" / "train_subset_20k_tokenized.tsv")[: STEPS * 32]
    dev = read_pairs(root / "mnli" / "dev_matched.jsonl")[:200]
    sentences = read_conllu(root / "ud_en_ewt" / "en_ewt-ud-dev.conllu")[:TRACKED]
    return train, dev, sentences


def test_tracking_every_50_steps_costs_at_most_15_percent(benchmark, data, tmp_path):
    train, dev, sentences = data
    plain_s, _ = timed(ftlens.finetune, "minilm", "pair", train, dev, tmp_path / "plain", **OPTIONS)
    tracked_s, run = timed(ftlens.finetune, "minilm", "pair", train, dev, tmp_path / "tracked",
                           track={"data": sentences, "every": EVERY}, **OPTIONS)
    trajectory = load_trajectory(run.out_dir)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(plain_s=plain_s, tracked_s=tracked_s)
    report(f"NLI, {STEPS} steps of 32, tracking {TRACKED} EWT sentences every {EVERY} steps ({machine()})",
           plain_s=f"{plain_s:.1f}", tracked_s=f"{tracked_s:.1f}", ratio=f"{tracked_s / plain_s:.3f}",
           rows=trajectory.n_rows, top_layer_rsa=f"{trajectory.values['rsa'][-1, -1]:.3f}")
    assert trajectory.steps == [0, 50, 100]
    assert tracked_s / plain_s <= 1.15
