"""compare_models vs a bare forward pass: what comparing adds on top of running the two
models (MiniLM, CPU), over the same length-sorted batches of UD English EWT dev sentences.

The shared machine's speed drifts by 10-20% over tens of seconds, so the whole runs are
timed alternately, compare_models right next to the bare forwards in every round, and
what it adds is the median over rounds of the difference between the two neighbours, in
wall time and in CPU time (which other tenants' load does not inflate)."""

import copy
import resource
import time

import ftlens
import numpy as np
import pytest
import torch
from conftest import ewt_dev_sentences, report
from ftlens.activations import align
from ftlens.activations.stream import ActivationStream

N_SENTENCES, ROUNDS = 800, 5


@pytest.fixture(scope="module")
def setup():
    sentences = ewt_dev_sentences(N_SENTENCES)
    base = ftlens.load_model("minilm", device="cpu")
    finetuned = (copy.deepcopy(base[0]), base[1])
    stream = ActivationStream([base, finetuned], ordered=False, progress=False)  # as compare_models
    blocks = [block for _, block in stream.blocks(align.as_items(sentences))]
    return sentences, base, finetuned, stream, blocks


def _model_inputs(stream, block):
    """The model inputs of every batch the stream runs for a block, tokenized ahead."""
    inputs = []
    for batch in stream.batches(block.lengths):
        enc = stream._encode(stream.tokenizers[0], [block[i] for i in batch])
        inputs.append({k: v for k, v in enc.items() if k != "offset_mapping"})
    return inputs


def _gemm_floor(chunks, views: int):
    """The GEMMs that LayerMoments updates with these chunks need, plain torch: X^T X,
    Y^T Y and X^T Y per layer and view."""
    for states in chunks:
        for _ in range(views):
            for x, y in zip(*states, strict=True):
                x.T @ x, y.T @ y, x.T @ y


def _cpu_seconds() -> float:
    """User + system time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rounds(runs: dict, rounds: int) -> tuple[dict, dict]:
    """Wall and CPU times of each run over alternating rounds (the order flips each round,
    so the first two runs are neighbours in every round)."""
    wall, cpu = {name: [] for name in runs}, {name: [] for name in runs}
    for r in range(rounds):
        for name, fn in runs.items() if r % 2 == 0 else reversed(runs.items()):
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(_cpu_seconds() - start_cpu)
    return wall, cpu


@pytest.fixture
def intra_op_threads(request):
    """torch's intra-op threads for one test (None: as they are), restored afterwards."""
    before = torch.get_num_threads()
    if request.param is not None:
        torch.set_num_threads(request.param)
    yield torch.get_num_threads()
    torch.set_num_threads(before)


# With one intra-op thread the forwards leave the second core to the worker thread that
# accumulates: the configuration of a machine whose forwards do not keep every core busy.
# With two, compare_models accumulates in line, between the forwards.
@pytest.mark.parametrize("measures, intra_op_threads", [(("cka",), None), (("cka", "rsa"), None),
                                                       (("cka", "rsa"), 1)],
                         ids=["cka", "cka+rsa", "cka+rsa, 1 thread"], indirect=["intra_op_threads"])
def test_compare_models_vs_bare_forward(benchmark, setup, measures, intra_op_threads):
    sentences, base, finetuned, stream, blocks = setup
    inputs = [batch for block in blocks for batch in _model_inputs(stream, block)]
    chunks = [stream.block(block).states for block in blocks]
    rdms = ("correlation",) if "rsa" in measures else ()

    @torch.inference_mode()
    def bare():
        for batch in inputs:
            base[0](**batch)
            finetuned[0](**batch)

    def compare():
        return ftlens.compare_models(base, finetuned, sentences, measures=measures, progress=False)

    def accumulate():
        moments = ftlens.LayerMoments(7, 384, 384, rdms=rdms)
        for states in chunks:
            moments.update(*states)

    result = compare()  # warm-up
    runs = {"bare": bare, "compare_models": compare, "accumulation alone": accumulate,
            "GEMM floor": lambda: _gemm_floor(chunks, 1 + len(rdms))}
    times, cpu = _rounds(runs, ROUNDS)
    best = {name: min(t) for name, t in times.items()}
    floor = float(np.median(times["GEMM floor"]))  # a median, like what is added
    # What compare_models adds, two ways: the median of the neighbours' differences (drift
    # cancels) and the fastest run of each (the machine's quiet moments).
    added = float(np.median(np.subtract(times["compare_models"], times["bare"])))
    added_fastest = best["compare_models"] - best["bare"]
    # The same in CPU time, which other tenants' load on the shared machine does not inflate.
    added_cpu_over_floor = (float(np.median(np.subtract(cpu["compare_models"], cpu["bare"])))
                            / float(np.median(cpu["GEMM floor"])))
    overhead, added_over_floor = added / best["bare"], added / floor
    accumulate_share = best["accumulation alone"] / best["bare"]
    n_rows = sum(states[0].shape[1] for states in chunks)
    chunks.clear()
    benchmark.pedantic(compare, rounds=1, iterations=1)
    benchmark.extra_info.update(bare_s=times["bare"], compare_models_s=times["compare_models"],
                                added_s=added, added_fastest_s=added_fastest, overhead=overhead,
                                accumulate_share=accumulate_share, gemm_floor_s=floor,
                                added_over_floor=added_over_floor, added_cpu_over_floor=added_cpu_over_floor)
    tokens = sum(int(b["attention_mask"].sum()) for b in inputs)
    report(f"compare_models ({'+'.join(measures)}) vs bare forward, 2 x MiniLM, {intra_op_threads} intra-op "
           "thread(s)", sentences=len(sentences),
           tokens=tokens, blocks=len(blocks), bare_s=f"{best['bare']:.2f}",
           compare_models_s=f"{best['compare_models']:.2f}", added_s=f"{added:.2f}",
           added_fastest_s=f"{added_fastest:.2f}", overhead=f"{overhead:+.1%}",
           accumulate_alone=f"{accumulate_share:.1%}", gemm_floor_s=f"{floor:.2f}",
           added_over_floor=f"{added_over_floor:.2f}", fastest_over_floor=f"{added_fastest / floor:.2f}",
           cpu_time_over_floor=f"{added_cpu_over_floor:.2f}")
    assert result.n_rows == n_rows  # every captured row was accumulated
    # Targets: the foundation's 15% over the forwards with CKA alone; with compare_models'
    # default measures, at most 1.2x the accumulator's GEMM floor. With every core in the
    # forwards (2 threads on 2 cores) the accumulation cannot hide behind them: it adds its
    # own 0.9-1.15x the floor plus capture, and the run-to-run spread is about the floor
    # (bench/RESULTS.md), so these guard against regressions. With a core left to the
    # worker thread the target holds.
    if measures == ("cka",):
        assert overhead <= 0.3
    elif intra_op_threads == 1:
        assert added_over_floor <= 1.2
    else:
        assert added_over_floor <= 2.5
