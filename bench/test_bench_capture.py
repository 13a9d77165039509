"""Capture + accumulate vs a bare forward pass: what compare_models adds on top of running
the two models (MiniLM, CPU), over the same length-sorted batches of UD English EWT dev
sentences."""

import copy
import os
from pathlib import Path

import ftlens
import pytest
import torch
from conftest import report, timed
from ftlens import align
from ftlens.data import read_conllu
from ftlens.stream import ActivationStream

N_SENTENCES, ROUNDS = 300, 5


@pytest.fixture(scope="module")
def setup():
    folder = os.environ.get("FTLENS_DATA_DIR")
    if not folder:
        raise RuntimeError("set FTLENS_DATA_DIR to the data folder (make bench sets ../shared/data)")
    sentences = read_conllu(Path(folder) / "ud_en_ewt" / "en_ewt-ud-dev.conllu")[:N_SENTENCES]
    base = ftlens.load_model("minilm", device="cpu")
    finetuned = (copy.deepcopy(base[0]), base[1])
    return align.as_items(sentences), base, finetuned


def _same_batches(stream, items):
    """The model inputs of every batch the stream will run, tokenized ahead of time."""
    batches = []
    for start, stop in stream.block_bounds(items):
        block = items[start:stop]
        for batch in stream.batches(stream.lengths(block)):
            enc = stream._encode(stream.tokenizers[0], [block[i] for i in batch])
            batches.append({k: v for k, v in enc.items() if k != "offset_mapping"})
    return batches


def test_capture_and_accumulate_vs_bare_forward(benchmark, setup):
    items, base, finetuned = setup
    stream = ActivationStream([base, finetuned], progress=False)  # compare_models' batching
    batches = _same_batches(stream, items)

    @torch.inference_mode()
    def bare_forward():
        for inputs in batches:
            base[0](**inputs)
            finetuned[0](**inputs)

    def compare(measures):
        return ftlens.compare_models(base, finetuned, items, measures=measures, progress=False)

    variants = {"bare": bare_forward, "cka": lambda: compare(("cka",)),
                "cka+rsa": lambda: compare(("cka", "rsa"))}
    times = {name: [] for name in variants}
    for _ in range(ROUNDS):  # interleaved: drift of the shared machine hits all variants alike
        for name, fn in variants.items():
            times[name].append(timed(fn)[0])
    # Fastest round of each (the rounds least disturbed by other work on the machine).
    best = {name: min(t) for name, t in times.items()}
    overhead = {name: best[name] / best["bare"] - 1 for name in ("cka", "cka+rsa")}
    result = benchmark.pedantic(variants["cka+rsa"], rounds=1, iterations=1)
    benchmark.extra_info.update(times_s=times, overhead=overhead)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    report("capture + accumulate vs bare forward (2 x MiniLM)", sentences=len(items), tokens=tokens,
           batches=len(batches), bare_s=f"{best['bare']:.2f}",
           **{f"{k}_overhead": f"{v:+.1%}" for k, v in overhead.items()})
    assert result.n_rows == tokens
    assert overhead["cka"] <= 0.15  # the target
    # RSA's correlation RDM needs three more GEMMs of the same size as CKA's, so its floor
    # alone is about twice CKA's; see bench/RESULTS.md. Guard against regressions.
    assert overhead["cka+rsa"] <= 0.35
