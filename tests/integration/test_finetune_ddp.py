"""ftlens.finetune under torchrun: two gloo processes on the CPU train a few steps
through the Trainer's DDP and end with the same weights, and the layers' trajectory they
record together (the ranks take turns at the tracking set's chunks: 256 and 44 inputs) is
the one-process measurement."""

import json
import os
import subprocess
import sys
import textwrap

import ftlens
import ftlens.finetuning
import numpy as np
import torch
from ftlens.data import generate_sentences
from ftlens.finetuning.tracking import parameter_change

RANK_SCRIPT = textwrap.dedent("""
    import os, sys, torch, transformers, ftlens
    from ftlens.data import generate_sentences
    from ftlens.data.generated import generate_pairs

    out = sys.argv[1]
    train = transformers.Trainer.train

    def train_and_keep(self, *args, **kwargs):  # each rank's weights, as its Trainer ends
        result = train(self, *args, **kwargs)
        weights = self.accelerator.unwrap_model(self.model).state_dict()
        torch.save(weights, os.path.join(out, "weights." + os.environ["RANK"]))
        return result

    transformers.Trainer.train = train_and_keep
    ftlens.finetune("minilm", "pair", generate_pairs(64, seed=0), generate_pairs(16, seed=1),
                    os.path.join(out, "run"), max_steps=3, batch_size=4, max_length=40, learning_rate=1e-4,
                    progress=False, track={"data": generate_sentences(300, seed=3), "every": 1})
""")


def test_two_gloo_processes_end_with_the_same_weights(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--standalone", str(script), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (torch.load(tmp_path / f"weights.{rank}") for rank in (0, 1))
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    base, _ = ftlens.load_model("minilm", device="cpu")
    changed = [k for k, v in base.state_dict().items() if not torch.equal(first["encoder." + k], v)]
    assert len(changed) > 90  # every trained weight moved (the unused pooler stays)
    final = json.loads((tmp_path / "run" / "metrics.json").read_text())["final"]
    assert final["step"] == 3 and final["epoch"] == 3 * 4 * 2 / 64  # two ranks, 4 pairs each per step
    trajectory = ftlens.finetuning.load_trajectory(tmp_path / "run")
    assert trajectory.steps == [0, 1, 2, 3]
    sentences = generate_sentences(300, seed=3)
    alone = ftlens.compare_models("minilm", tmp_path / "run" / "model", sentences, ("rsa", "cka"),
                                  progress=False)
    for measure in ("rsa", "cka"):
        np.testing.assert_allclose(trajectory.values[measure][-1], alone.values[measure], rtol=0, atol=1e-6)
        np.testing.assert_allclose(trajectory.values[measure][0], 1.0, rtol=0, atol=1e-6)
    tuned, _ = ftlens.load_model(tmp_path / "run" / "model", device="cpu")
    change = parameter_change(tuned, {k: v.float() for k, v in base.named_parameters()})
    np.testing.assert_allclose(trajectory.change["total"][-1], change["total"], rtol=1e-6, atol=1e-9)
