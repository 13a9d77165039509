"""What the Multi-Bootstrap costs: a task metric over 10 seeds x 2,000 examples x 1,000
draws against a loop over draws and seeds (Sellam et al.'s procedure, numpy); and per-layer
CKA and RSA from per-group moments (7 layers, d = 384, 20 groups, 10 seeds, 1,000 draws)
against merging each draw's groups one by one (LayerMoments.merge, per draw) and against
the explicit weighted merge of each draw (one GEMM per layer, each draw's moments loaded)."""

import numpy as np
import pytest
import torch
from conftest import report, timed
from ftlens.similarity import gram_draws
from ftlens.similarity.bootstrap import draw, interval, moment_draws, multibootstrap
from ftlens.similarity.grouped import GroupedMoments

SEEDS, EXAMPLES, DRAWS = 10, 2000, 1000
LAYERS, WIDTH, GROUPS, ROWS = 7, 384, 20, 2000


def _loop(right: np.ndarray, resamples) -> np.ndarray:
    """The anchor: for each draw, each drawn seed's accuracy on the drawn examples."""
    return np.array([np.mean([right[s, rows].mean() for s in seeds])
                     for rows, seeds in zip(resamples.units, resamples.seeds, strict=True)])


def test_metric_multibootstrap_vs_a_loop(benchmark):
    rng = np.random.default_rng(0)
    right = (rng.uniform(size=(SEEDS, EXAMPLES)) < rng.uniform(0.5, 0.8, size=(SEEDS, 1))).astype(float)
    ours_s, result = timed(multibootstrap, right, None, draws=DRAWS, seed=0)
    resamples = draw(EXAMPLES, SEEDS, DRAWS, 0)
    loop_s, want = timed(_loop, right, resamples)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(ours_s=ours_s, loop_s=loop_s)
    report("metric Multi-Bootstrap, 10 seeds x 2,000 examples x 1,000 draws", ours_s=f"{ours_s:.3f}",
           loop_s=f"{loop_s:.2f}", speedup=f"{loop_s / ours_s:.0f}x",
           interval=f"{result.estimate:.4f} [{result.low:.4f}, {result.high:.4f}]")
    assert np.abs(result.draws - want).max() < 1e-12
    assert ours_s < 5.0


@pytest.fixture(scope="module")
def seeds_moments():
    """Per-group moments of a base model's layers against each seed's fine-tuned ones."""
    torch.manual_seed(0)
    base = torch.randn(LAYERS, ROWS, WIDTH) * 2 + 5
    out = []
    for _ in range(SEEDS):
        tuned = base + 0.7 * torch.randn(LAYERS, ROWS, WIDTH)
        moments = GroupedMoments(GROUPS, ROWS, LAYERS, WIDTH, WIDTH, rdms=("correlation",))
        moments.update(base, tuned, np.arange(ROWS))
        out.append(moments)
    return out


def _merged_one_by_one(moments: GroupedMoments, weights: np.ndarray) -> np.ndarray:
    """The anchor for one draw: its groups merged one at a time, as often as drawn."""
    merged = moments.groups[0].empty_like()
    for group, times in enumerate(weights):
        for _ in range(int(times)):
            merged.merge(moments.groups[group])
    return np.stack([merged.cka(), merged.rsa("correlation")])


def test_moment_multibootstrap_vs_merging_each_draw(benchmark, seeds_moments):
    requests = {"cka": {}, "rsa": {"rdm": "correlation"}}
    resamples = draw(GROUPS, SEEDS, DRAWS, 0)
    unit_counts = resamples.unit_counts

    def ours():
        per_seed = [moment_draws(m.groups, requests, unit_counts) for m in seeds_moments]
        full = np.stack([m.merged().cka() for m in seeds_moments])
        draws = np.stack([d["cka"] for d in per_seed])
        return interval(full, draws, resamples.seeds, 0.95, GROUPS, method="normal"), per_seed

    ours_s, (cka, per_seed) = timed(ours)
    anchor_draws = 20
    anchor_s, want = timed(lambda: [_merged_one_by_one(seeds_moments[0], w)
                                    for w in unit_counts[:anchor_draws]])
    per_draw_anchor = anchor_s / anchor_draws
    with pytest.MonkeyPatch.context() as patch:  # every draw's moments merged and loaded
        patch.setattr(gram_draws, "supports", lambda *_: False)
        explicit_s, explicit = timed(moment_draws, seeds_moments[0].groups, requests,
                                     unit_counts[:anchor_draws])
    per_draw_explicit = explicit_s / anchor_draws
    per_draw_ours = ours_s / (DRAWS * SEEDS)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(ours_s=ours_s, anchor_per_draw_s=per_draw_anchor)
    report("moment Multi-Bootstrap, 7 layers x d=384, 20 groups, 10 seeds, 1,000 draws, cka + rsa",
           ours_s=f"{ours_s:.0f}", ours_per_seed_draw_ms=f"{1e3 * per_draw_ours:.1f}",
           merge_per_seed_draw_ms=f"{1e3 * per_draw_anchor:.1f}",
           explicit_per_seed_draw_ms=f"{1e3 * per_draw_explicit:.1f}",
           speedup_vs_merge=f"{per_draw_anchor / per_draw_ours:.0f}x",
           speedup_vs_explicit=f"{per_draw_explicit / per_draw_ours:.0f}x",
           top_layer_cka=f"{cka.estimate[-1]:.4f} [{cka.low[-1]:.4f}, {cka.high[-1]:.4f}]",
           top_layer_bias=f"{cka.bias[-1]:+.4f}")
    got = np.stack([per_seed[0]["cka"][:anchor_draws], per_seed[0]["rsa"][:anchor_draws]], axis=1)
    assert np.abs(got - np.stack(want)).max() < 1e-10
    assert max(np.abs(per_seed[0][k][:anchor_draws] - explicit[k]).max() for k in requests) < 1e-10
    assert ours_s < 300
