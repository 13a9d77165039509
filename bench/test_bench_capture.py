"""compare_models vs a bare forward pass: what comparing adds on top of running the two
models (MiniLM, CPU), over the same length-planned batches of UD English EWT dev sentences;
and the length plan itself against the block-local sort it replaced.

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
from ftlens.activations import align, plan
from ftlens.activations.stream import ActivationStream

N_SENTENCES, ROUNDS = 800, 5


@pytest.fixture(scope="module")
def setup():
    sentences = ewt_dev_sentences(N_SENTENCES)
    base = ftlens.load_model("minilm", device="cpu")
    finetuned = (copy.deepcopy(base[0]), base[1])
    stream = ActivationStream([base, finetuned], ordered=False, progress=False)  # as compare_models
    items = align.as_items(sentences)
    lengths = stream.lengths(items)
    plans = {"length plan": stream.batches(lengths, within_block=True),
             "block-local sort": _blockwise(stream, lengths)}
    return sentences, base, finetuned, stream, lengths, {name: _model_inputs(stream, items, batches)
                                                         for name, batches in plans.items()}


def _blockwise(stream, lengths):
    """The plan before the length planner: inputs sorted by length inside each block of 256
    consecutive inputs (8,192 tokens), batches filled up to batch_size whatever their padding."""
    return [a + batch for a, b in stream.block_bounds(lengths)
            for batch in plan.length_batches(lengths[a:b], stream.batch_size, stream.max_batch_tokens,
                                             padding=np.inf)]


def _model_inputs(stream, items, batches):
    """The model inputs of these batches, tokenized ahead."""
    inputs = []
    for batch in batches:
        enc = stream._encode(stream.tokenizers[0], [items[i] for i in batch])
        inputs.append({k: v for k, v in enc.items() if k != "offset_mapping"})
    return inputs


def _bare(models, inputs):
    """Both models' forwards over pre-tokenized batches, no hooks."""

    @torch.inference_mode()
    def run():
        for batch in inputs:
            for model in models:
                model(**batch)

    return run


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
    sentences, base, finetuned, stream, lengths, inputs = setup
    chunks = [chunk.states for chunk in stream(sentences)]
    rdms = ("correlation",) if "rsa" in measures else ()
    bare = _bare((base[0], finetuned[0]), inputs["length plan"])

    def compare():
        return ftlens.compare_models(base, finetuned, sentences, measures=measures, progress=False)

    def accumulate():
        moments = ftlens.LayerMoments(7, 384, 384, rdms=rdms)
        for states in chunks:
            moments.update(*states).flush()

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
    over_bare = best["compare_models"] / best["bare"]
    accumulate_share = best["accumulation alone"] / best["bare"]
    n_rows, n_chunks = sum(states[0].shape[1] for states in chunks), len(chunks)
    chunks.clear()
    benchmark.pedantic(compare, rounds=1, iterations=1)
    benchmark.extra_info.update(bare_s=times["bare"], compare_models_s=times["compare_models"],
                                added_s=added, added_fastest_s=added_fastest, overhead=overhead,
                                accumulate_share=accumulate_share, gemm_floor_s=floor,
                                added_over_floor=added_over_floor, added_cpu_over_floor=added_cpu_over_floor,
                                over_bare=over_bare)
    tokens = int(lengths.sum())
    report(f"compare_models ({'+'.join(measures)}) vs bare forward, 2 x MiniLM, {intra_op_threads} intra-op "
           "thread(s)", sentences=len(sentences),
           tokens=tokens, chunks=n_chunks, bare_s=f"{best['bare']:.2f}",
           compare_models_s=f"{best['compare_models']:.2f}", over_bare=f"{over_bare:.3f}",
           added_s=f"{added:.2f}",
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
        assert over_bare <= 1.25  # issue "end to end at the forward-pass floor", over the same plan


def test_length_plan_vs_block_local_sort(benchmark, setup):
    """The bare forwards of both models over the length plan against the block-local sort
    it replaced (torch's default threads), alternating rounds; and each plan's padded slots
    over real tokens."""
    sentences, base, finetuned, stream, lengths, inputs = setup
    runs = {name: _bare((base[0], finetuned[0]), batches) for name, batches in inputs.items()}
    runs["length plan"]()  # warm-up
    times, _ = _rounds(runs, ROUNDS)
    speedup = min(times["block-local sort"]) / min(times["length plan"])
    paired = float(np.median(np.divide(times["block-local sort"], times["length plan"])))
    padding = {name: sum(b["input_ids"].numel() for b in batches) / int(lengths.sum())
               for name, batches in inputs.items()}
    benchmark.pedantic(runs["length plan"], rounds=1, iterations=1)
    benchmark.extra_info.update(times=times, speedup=speedup, padding=padding)
    report("bare forwards, 2 x MiniLM: length plan vs block-local sort", sentences=len(sentences),
           tokens=int(lengths.sum()), batches={k: len(v) for k, v in inputs.items()},
           planned_s=f"{min(times['length plan']):.2f}", blockwise_s=f"{min(times['block-local sort']):.2f}",
           speedup_fastest=f"{speedup:.2f}", speedup_median_pair=f"{paired:.2f}",
           slots_over_tokens={k: f"{v:.3f}" for k, v in padding.items()})
    assert padding["length plan"] <= 1.05
    assert speedup >= 1.25
