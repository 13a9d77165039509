"""Comparisons over seeds: compare_models keeps its measures on bootstrap resamples of the
input groups (the same resamples for every seed), across_seeds combines seeds into the
Multi-Bootstrap, between_procedures compares two procedures layer by layer; mismatched
comparisons are refused."""

import copy

import ftlens
import numpy as np
import pytest
import torch
from ftlens.activations.capture import layer_blocks
from ftlens.compare.models import LayerComparison
from ftlens.compare.seeds import across_seeds, between_procedures
from ftlens.data import generate_sentences
from ftlens.similarity import bootstrap
from ftlens.similarity.bootstrap import draw, moment_draws
from ftlens.similarity.grouped import GroupedMoments

SENTENCES = [" ".join(s.words) for s in generate_sentences(40, seed=3)]
OPTIONS = dict(measures=("cka", "rsa"), ci_groups=8, draws=60, draw_seed=5, progress=False)


def _changed(minilm, seed: int, scale: float):
    """The model with noise of ``scale`` added to its top layer's weights: a 'seed'."""
    model, tokenizer = minilm
    changed = copy.deepcopy(model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in list(layer_blocks(changed))[-1].parameters():
            param.add_(scale * param.std() * torch.randn_like(param))
    return changed, tokenizer


@pytest.fixture(scope="module")
def procedures(minilm):
    """Two procedures x three seeds: small and larger changes of the top layer."""
    return {scale: [ftlens.compare_models(minilm, _changed(minilm, seed, scale), SENTENCES, **OPTIONS)
                    for seed in (0, 1, 2)] for scale in (0.2, 0.8)}


def test_compare_models_keeps_the_measures_on_each_resample_of_its_groups(minilm, procedures):
    result = procedures[0.2][0]
    assert set(result.draws) == {"cka", "rsa"} and result.draws["cka"].shape == (60, 7)
    assert result.ci is None and result.ci_groups == 8 and result.draw_seed == 5
    # the same draws, recomputed from the groups' moments
    model = _changed(minilm, 0, 0.2)
    again = ftlens.compare_models(minilm, model, SENTENCES, **{**OPTIONS, "draws": 60})
    assert np.array_equal(again.draws["cka"], result.draws["cka"])
    back = LayerComparison.from_dict(result.to_dict())
    assert np.array_equal(back.draws["rsa"], result.draws["rsa"]) and back.data == result.data


def test_across_seeds_is_the_multibootstrap_of_the_seeds_draws(procedures):
    seeds = [7, 3, 5]  # any seeds: the rows are taken in seed order
    runs = procedures[0.8]
    combined = across_seeds(runs, seeds, level=0.9)
    order = np.argsort(seeds)
    for name in ("cka", "rsa"):
        full = np.stack([runs[i].values[name] for i in order])
        per_seed = np.stack([runs[i].draws[name] for i in order])
        weights = bootstrap.counts(draw(8, 3, 60, 5).seeds) / 3
        values = np.einsum("ds,sdl->dl", weights, per_seed)
        z = 1.6448536269514722
        se = values.std(axis=0, ddof=1)
        assert np.allclose(combined.values[name], full.mean(0), atol=1e-14)
        want = [full.mean(0) - z * se, full.mean(0) + z * se]
        assert np.allclose(combined.intervals[name], want, atol=1e-12)
        assert np.allclose(combined.bias[name], values.mean(0) - full.mean(0), atol=1e-14)
        assert np.array_equal(combined.seed_values[name], full)
    assert combined.seeds == [3, 5, 7] and combined.interval_method == "multibootstrap"
    assert combined.values["cka"][-1] < combined.values["cka"][0]  # the top layer changed most


def test_between_procedures_pairs_the_seeds(procedures):
    small, large = procedures[0.2], procedures[0.8]
    diff = between_procedures(small, [0, 1, 2], large, [0, 1, 2])
    for name in ("cka", "rsa"):
        assert diff[name].paired
        want = np.mean([c.values[name] for c in large], 0) - np.mean([c.values[name] for c in small], 0)
        assert np.allclose(diff[name].estimate, want, atol=1e-14)
    # the larger change lowers the top layer's CKA, surely; the embeddings do not move
    assert diff["cka"].high[-1] < 0 and diff["cka"].p[-1] < 0.01
    assert np.allclose(diff["cka"].estimate[0], 0, atol=1e-12) and diff["cka"].p[0] == 1.0
    unpaired = between_procedures(small, [0, 1, 2], large, [10, 11, 12])
    assert not unpaired["cka"].paired


def test_mismatched_comparisons_are_refused(minilm, procedures):
    runs = procedures[0.2]
    with pytest.raises(ValueError, match=r"one distinct seed per comparison"):
        across_seeds(runs, [0, 0, 1])
    plain = ftlens.compare_models(minilm, minilm, SENTENCES, ci=0.95, ci_groups=8, progress=False)
    with pytest.raises(ValueError, match=r"seeds \[1\] kept no bootstrap draws"):
        across_seeds([runs[0], plain], [0, 1])
    other = ftlens.compare_models(minilm, _changed(minilm, 1, 0.2), SENTENCES, **{**OPTIONS, "draw_seed": 6})
    with pytest.raises(ValueError, match=r"seed 1 differs from the first in \['draw_seed'\]"):
        across_seeds([runs[0], other], [0, 1])
    fewer = ftlens.compare_models(minilm, _changed(minilm, 1, 0.2), SENTENCES[:30], **OPTIONS)
    with pytest.raises(ValueError, match=r"differs from the first in \['n_inputs', 'data'\]"):
        across_seeds([runs[0], fewer], [0, 1])
    with pytest.raises(ValueError, match=r"draws= keeps bootstrap resamples of layer l vs layer l"):
        ftlens.compare_models(minilm, minilm, SENTENCES, pairs="all", draws=10, progress=False)


def test_the_draws_equal_the_moment_draws_of_the_groups(minilm):
    """compare_models' draws are moment_draws of the same groups under draw(G, 1, D, seed)."""
    model = _changed(minilm, 4, 0.5)
    with pytest.warns(UserWarning, match=r"undefined \(NaN\): cka at \[0\]"):
        result = ftlens.compare_models(minilm, model, SENTENCES[:16], measures=("cka",), rows="cls",
                                       ci_groups=4, draws=12, draw_seed=2, progress=False)
    from ftlens.activations.align import as_items
    from ftlens.activations.options import CaptureOptions
    from ftlens.activations.stream import ActivationStream

    items = as_items(SENTENCES[:16])
    stream = ActivationStream([minilm, model], CaptureOptions(rows="cls"), progress=False)
    moments = GroupedMoments(4, 16, 7, 384, 384, rdms=())
    for chunk in stream(items):
        moments.update(chunk.states[0], chunk.states[1], chunk.item)
    want = moment_draws(moments.groups, {"cka": {}}, draw(4, 1, 12, 2).unit_counts)["cka"]
    assert np.isnan(want[:, 0]).all() and np.isnan(result.draws["cka"][:, 0]).all()  # [CLS] embeddings
    # (the rows' float32 products round differently in another batching)
    assert np.abs(result.draws["cka"][:, 1:] - want[:, 1:]).max() < 1e-6
