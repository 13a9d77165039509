"""No silent numbers at the edges of floating point: nearly constant inputs, CCA's
direction cut-off on float32 input, isotropy's constant dimensions."""

import copy

import ftlens
import numpy as np
import pytest
import torch
from ftlens.activations.stream import ActivationStream


def nearly_constant(n=200, p=6, dtype=np.float64, seed=0):
    """Rows = a constant + 100.1, plus noise at the rounding level of that value."""
    rng = np.random.default_rng(seed)
    ulp = np.spacing(dtype(100.1))
    return (np.full((n, p), 100.1, dtype=dtype) + ulp * rng.integers(-2, 3, size=(n, p))).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("measure", ["cka", "cka_debiased", "procrustes", "cca", "svcca", "pwcca", "rsa"])
def test_nearly_constant_input_is_undefined_for_every_measure(measure, dtype):
    x = nearly_constant(dtype=dtype)
    y = np.random.default_rng(1).normal(size=(200, 5)).astype(dtype)
    call = {
        "cka": lambda **kw: ftlens.cka(x, y, **kw),
        "cka_debiased": lambda **kw: ftlens.cka(x, y, debiased=True, **kw),
        "procrustes": lambda **kw: ftlens.procrustes(x, y, **kw),
        "cca": lambda **kw: ftlens.cca(x, y, **kw),
        "svcca": lambda **kw: ftlens.cca(x, y, "svcca", k=3, **kw),
        "pwcca": lambda **kw: ftlens.cca(x, y, "pwcca", **kw),
        "rsa": lambda **kw: ftlens.rsa(x, y, "inner", **kw),
    }[measure]
    with pytest.raises(ValueError, match="X has zero variance at layer 0"):
        call()
    assert np.isnan(call(undefined="nan"))


def test_nearly_constant_input_in_isotropy_is_refused():
    with pytest.raises(ValueError, match="X has zero variance at layer 0"):
        ftlens.isotropy(nearly_constant())


def spectrum_data(n, seed=0):
    """64 dimensions with variances from 1 down to 1e-3 (offset by 10), and a noisy rotation."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 64))
    x = z * np.sqrt(np.logspace(0, -3, 64)) + 10.0
    rotation = np.linalg.qr(rng.normal(size=(64, 64)))[0]
    y = (z + 0.8 * rng.normal(size=(n, 64))) @ rotation * 0.3 - 4.0
    return x, y


@pytest.mark.parametrize("n", [50_000, 200_000])
def test_cca_keeps_low_variance_directions_on_float32_input(n):
    x, y = spectrum_data(n)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    for method, k in (("mean", None), ("pwcca", None), ("svcca", 64)):
        want = ftlens.cca(x32.astype(np.float64), y32.astype(np.float64), method, k)
        assert ftlens.cca(x32, y32, method, k) == pytest.approx(want, abs=1e-4), method
    # all 64 canonical directions: their mean equals the float64 one only if none was cut
    m = ftlens.Moments(64, 64).update(x32, y32)
    m64 = ftlens.Moments(64, 64).update(x32.astype(np.float64), y32.astype(np.float64))
    assert m.cca("svcca", k=64) == pytest.approx(m64.cca("svcca", k=64), abs=1e-6)
    assert m.isotropy()["n_constant_dims"] == 0


def test_isotropy_spread_undefined_when_half_the_dimensions_are_constant():
    rng = np.random.default_rng(0)
    x = np.zeros((100, 6))
    x[:, :2] = rng.normal(size=(100, 2))
    x[:, 2:] = 3.0
    message = r"dim_std_max_over_median is NaN at layer\(s\) \[0\].*n_constant_dims"
    with pytest.warns(UserWarning, match=message):
        iso = ftlens.isotropy(x)
    assert np.isnan(iso["dim_std_max_over_median"]) and iso["n_constant_dims"] == 4


@pytest.fixture(scope="module")
def ewt_dev_activations(minilm, data_dir):
    """MiniLM and a copy with its top two blocks re-initialized, over every EWT dev token."""
    model, tokenizer = minilm
    other = copy.deepcopy(model)
    torch.manual_seed(0)
    for block in other.encoder.layer[-2:]:
        block.apply(other._init_weights)
    sentences = ftlens.data.read_conllu(data_dir / "ud_en_ewt" / "en_ewt-ud-dev.conllu")
    stream = ActivationStream([(model, tokenizer), (other, tokenizer)], rows="tokens", progress=False)
    parts = [(c.states[0][6].numpy(), c.states[1][6].numpy()) for c in stream(sentences)]
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def test_minilm_float32_equals_float64_on_all_ewt_dev_tokens(ewt_dev_activations):
    x, y = ewt_dev_activations
    assert len(x) > 30_000
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    for method in ("mean", "pwcca", "svcca"):
        assert ftlens.cca(x, y, method) == pytest.approx(ftlens.cca(x64, y64, method), abs=1e-4), method
    assert ftlens.cca(x, y) == pytest.approx(0.4968, abs=2e-3)  # float64 / Google's SVCCA code: 0.496
    iso32, iso64 = ftlens.isotropy(x), ftlens.isotropy(x64)
    assert iso32["n_constant_dims"] == iso64["n_constant_dims"]
    assert iso32["mean_sq_dim_correlation"] == pytest.approx(iso64["mean_sq_dim_correlation"], rel=1e-6)


@pytest.mark.parametrize("bad, message", [
    (dict(k=-3), r"k \(SVCCA's number of directions"),
    (dict(k=2.5), r"k \(SVCCA's number of directions"),
    (dict(chunk_rows=2.5), "chunk_rows must be a positive integer, got 2.5"),
    (dict(chunk_rows=0), "chunk_rows must be a positive integer, got 0"),
])
def test_bad_numbers_for_cca_are_refused(bad, message):
    x, y = spectrum_data(100)
    with pytest.raises(ValueError, match=message):
        ftlens.cca(x, y, "svcca", **bad)


def test_bad_layer_counts_are_refused():
    with pytest.raises(ValueError, match="n_layers must be a positive integer, got 2.5"):
        ftlens.LayerMoments(2.5, 4, 4)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        ftlens.isotropy(spectrum_data(50)[0], top_k=0)
