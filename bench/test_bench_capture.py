"""Capture + accumulate vs a bare forward pass: what compare_models adds on top of running
the two models (MiniLM, CPU), over the same length-sorted batches of UD English EWT dev
sentences.

The shared machine's speed drifts by 10-20% between runs of a few seconds, so the two are
timed block by block, alternately, several times; each block keeps its fastest time."""

import copy
import time

import ftlens
import pytest
import torch
from conftest import ewt_dev_sentences, report
from ftlens import align
from ftlens.stream import ActivationStream

N_SENTENCES, REPEATS = 800, 3


@pytest.fixture(scope="module")
def setup():
    sentences = ewt_dev_sentences(N_SENTENCES)
    base = ftlens.load_model("minilm", device="cpu")
    finetuned = (copy.deepcopy(base[0]), base[1])
    return align.as_items(sentences), base, finetuned


def _model_inputs(stream, block):
    """The model inputs of every batch the stream runs for a block, tokenized ahead."""
    inputs = []
    for batch in stream.batches(block.lengths):
        enc = stream._encode(stream.tokenizers[0], [block[i] for i in batch])
        inputs.append({k: v for k, v in enc.items() if k != "offset_mapping"})
    return inputs


def _gemm_floor(xs, ys, views: int):
    """The GEMMs a LayerMoments update of these [L, m, d] states needs, plain torch."""
    for _ in range(views):
        for x, y in zip(xs, ys, strict=True):
            x.T @ x, y.T @ y, x.T @ y


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.parametrize("rdms", [(), ("correlation",)], ids=["cka", "cka+rsa"])
def test_capture_and_accumulate_vs_bare_forward(benchmark, setup, rdms):
    items, base, finetuned = setup
    stream = ActivationStream([base, finetuned], ordered=False, progress=False)  # as compare_models
    blocks = [block for _, block in stream.blocks(items)]
    inputs = [_model_inputs(stream, block) for block in blocks]
    moments = ftlens.LayerMoments(7, 384, 384, rdms=rdms)

    @torch.inference_mode()
    def bare(batches):
        for batch in batches:
            base[0](**batch)
            finetuned[0](**batch)

    def capture_and_accumulate(block):
        chunk = stream.block(block)
        moments.update(chunk.states[0], chunk.states[1])

    best_bare = [float("inf")] * len(blocks)
    best_ours = [float("inf")] * len(blocks)
    for repeat in range(REPEATS):
        for i, block in enumerate(blocks):
            runs = [(best_bare, bare, inputs[i]), (best_ours, capture_and_accumulate, block)]
            for best, fn, arg in runs if repeat % 2 == 0 else runs[::-1]:  # alternate who goes first
                best[i] = min(best[i], _seconds(lambda fn=fn, arg=arg: fn(arg)))
    overhead = sum(best_ours) / sum(best_bare) - 1
    # Where the time goes: capture alone (forwards + hooks, alignment, gathering) and the
    # accumulation alone on chunks captured ahead, as shares of the bare forward passes.
    chunks = [stream.block(block) for block in blocks]
    parts = {"capture": [float("inf")] * len(blocks), "accumulate": [float("inf")] * len(blocks)}
    spare = ftlens.LayerMoments(7, 384, 384, rdms=rdms)
    for _ in range(REPEATS):
        for i, block in enumerate(blocks):
            parts["capture"][i] = min(parts["capture"][i], _seconds(lambda block=block: stream.block(block)))
            states = chunks[i].states
            parts["accumulate"][i] = min(parts["accumulate"][i],
                                         _seconds(lambda states=states: spare.update(states[0], states[1])))
    capture_share = sum(parts["capture"]) / sum(best_bare) - 1
    accumulate_share = sum(parts["accumulate"]) / sum(best_bare)
    # The accumulator's own floor: the plain GEMMs of its views on the same chunks (X^T X,
    # Y^T Y, X^T Y per layer and view), fastest of REPEATS per block.
    floor = [float("inf")] * len(blocks)
    for _ in range(REPEATS):
        for i, chunk in enumerate(chunks):
            floor[i] = min(floor[i], _seconds(lambda s=chunk.states: _gemm_floor(s[0], s[1], 1 + len(rdms))))
    added_over_floor = (sum(best_ours) - sum(best_bare)) / sum(floor)
    del chunks
    moments.reset()
    benchmark.pedantic(lambda: [capture_and_accumulate(b) for b in blocks], rounds=1, iterations=1)
    benchmark.extra_info.update(bare_s=sum(best_bare), ours_s=sum(best_ours), overhead=overhead,
                                capture_share=capture_share, accumulate_share=accumulate_share,
                                gemm_floor_s=sum(floor), added_over_floor=added_over_floor)
    tokens = sum(int(b["attention_mask"].sum()) for batches in inputs for b in batches)
    report(f"capture + accumulate ({'+'.join(['cka', *['rsa'] * bool(rdms)])}) vs bare forward, 2 x MiniLM",
           sentences=len(items), tokens=tokens, blocks=len(blocks), bare_s=f"{sum(best_bare):.2f}",
           ours_s=f"{sum(best_ours):.2f}", overhead=f"{overhead:+.1%}",
           capture_alone=f"{capture_share:+.1%}", accumulate_alone=f"{accumulate_share:.1%}",
           gemm_floor_s=f"{sum(floor):.2f}", added_over_floor=f"{added_over_floor:.2f}")
    assert moments.n == tokens
    if not rdms:
        assert overhead <= 0.15  # the foundation's target
    else:
        # compare_models' default measures ("cka", "rsa"): the target is that capture and
        # accumulation add at most 1.2x the accumulator's GEMM floor over the bare forwards.
        # Not met (bench/RESULTS.md: 1.8x; the accumulation alone is 1.25x its floor, capture
        # adds 5-13% of the forwards); this guards against regressions.
        assert added_over_floor <= 2.5
