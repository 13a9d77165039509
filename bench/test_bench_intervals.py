"""What the jackknife intervals cost: compare_models(ci=0.95, ci_groups=G) vs without, on
the same UD English EWT dev sentences (2 x MiniLM, CPU), timed alternately, with the peak
growth of anonymous memory of each."""

import copy

import ftlens
import pytest
import torch
from conftest import PeakRssAnon, ewt_dev_sentences, report, timed
from ftlens.activations.capture import layer_blocks

N_SENTENCES, REPEATS = 2000, 2


@pytest.fixture(scope="module")
def setup():
    sentences = ewt_dev_sentences(N_SENTENCES)
    base = ftlens.load_model("minilm", device="cpu")
    changed = copy.deepcopy(base[0])
    torch.manual_seed(0)
    for block in list(layer_blocks(changed))[-2:]:
        block.apply(changed._init_weights)
    return sentences, base, (changed, base[1])


@pytest.mark.parametrize("groups", [10, 20])
def test_jackknife_intervals_vs_plain_compare(benchmark, setup, groups):
    sentences, base, changed = setup

    def run(ci):
        kwargs = dict(ci=0.95, ci_groups=groups) if ci else {}
        with PeakRssAnon() as peak:
            seconds, result = timed(ftlens.compare_models, base, changed, sentences, progress=False, **kwargs)
        return seconds, peak.growth, result

    best = {False: (float("inf"), 0), True: (float("inf"), 0)}
    for repeat in range(REPEATS):
        for ci in (False, True) if repeat % 2 == 0 else (True, False):
            seconds, growth, result = run(ci)
            best[ci] = (min(best[ci][0], seconds), max(best[ci][1], growth))
            if ci:
                with_ci = result
    ratio = best[True][0] / best[False][0]
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(plain_s=best[False][0], ci_s=best[True][0], ratio=ratio,
                                plain_mb=best[False][1] / 2**20, ci_mb=best[True][1] / 2**20)
    low, high = with_ci.interval("cka")
    report(f"compare_models ci=0.95, {groups} jackknife groups vs no intervals (cka + rsa)",
           sentences=len(sentences), rows=with_ci.n_rows, plain_s=f"{best[False][0]:.1f}",
           ci_s=f"{best[True][0]:.1f}", ratio=f"{ratio:.2f}x",
           plain_peak_mb=f"{best[False][1] / 2**20:.0f}", ci_peak_mb=f"{best[True][1] / 2**20:.0f}",
           top_layer_cka=f"{with_ci.cka[-1]:.4f} [{low[-1]:.4f}, {high[-1]:.4f}]")
    assert (low <= with_ci.cka + 1e-12).all() and (with_ci.cka <= high + 1e-12).all()
    assert ratio < 1.6
