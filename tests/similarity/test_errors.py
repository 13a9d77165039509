"""Bad input gets a clear ValueError/TypeError naming the problem and the fix."""

import ftlens
import numpy as np
import pytest
import torch


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(50, 6)), rng.normal(size=(50, 4))


def test_different_row_counts(data):
    x, y = data
    with pytest.raises(ValueError, match="same number of rows.*50 and 49"):
        ftlens.cka(x, y[:49])
    with pytest.raises(ValueError, match="same number of rows"):
        ftlens.Moments(6, 4).update(x, y[:49])


def test_nan_names_layer_row_and_chunk(data):
    x, y = data
    x = x.copy()
    x[37, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or Inf at layer 0, row 37 \(row 7 of chunk 3\)"):
        ftlens.cka(x, y, chunk_rows=10)


def test_inf_in_a_layer_stack(data):
    x, y = data
    xs, ys = np.stack([x, x, x]), np.stack([y, y, y])
    ys[2, 11, 0] = np.inf
    with pytest.raises(ValueError, match="Y contains NaN or Inf at layer 2, row 11"):
        ftlens.LayerMoments(3, 6, 4).update(xs, ys)


def test_one_dimensional_input(data):
    x, y = data
    with pytest.raises(ValueError, match=r"X must be 2-D.*reshape\(-1, 1\)"):
        ftlens.cka(x[:, 0], y)


def test_three_dimensional_input(data):
    x, y = data
    with pytest.raises(ValueError, match="Y must be 2-D.*LayerMoments"):
        ftlens.rsa(x, y[None])


def test_layer_stack_of_wrong_shape(data):
    x, y = data
    with pytest.raises(ValueError, match=r"X must be \[2, rows, 6\]"):
        ftlens.LayerMoments(2, 6, 4).update(np.stack([x, x, x]), np.stack([y, y]))


def test_integer_input_is_a_type_error(data):
    x, y = data
    with pytest.raises(TypeError, match="floating-point.*astype"):
        ftlens.cka(x.astype(np.int64), y)
    with pytest.raises(TypeError, match=r"floating-point.*\.float\(\)"):
        ftlens.cka(torch.ones(5, 3, dtype=torch.int32), torch.ones(5, 3))


def test_too_few_rows_for_debiased_cka(data):
    x, y = data
    with pytest.raises(ValueError, match="debiased CKA needs at least 4 rows, got 3"):
        ftlens.cka(x[:3], y[:3], debiased=True)
    with pytest.raises(ValueError, match="RSA needs at least 3 rows, got 2"):
        ftlens.rsa(x[:2], y[:2])


def test_zero_variance_representation(data):
    x, y = data
    const = np.full_like(x, 3.0)
    with pytest.raises(ValueError, match="X has zero variance at layer 0"):
        ftlens.cka(const, y)
    with pytest.raises(ValueError, match="X has zero variance"):
        ftlens.cca(const, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rdm", ["correlation", "cosine", "inner", "sqeuclidean"])
def test_equal_rows_give_a_constant_rdm(data, rdm, dtype):
    x, y = data
    equal = np.tile(x[:1] + 100.0, (50, 1)).astype(dtype)  # rounding may leave a tiny spread
    with pytest.raises(ValueError, match=f"X has zero variance at layer 0 \\(its {rdm} RDM is constant\\)"):
        ftlens.rsa(equal, y.astype(dtype), rdm=rdm)


def test_undefined_pairs_as_nan_on_request(data):
    x, y = data
    xs = np.stack([np.full_like(x, 3.0), x])  # layer 0 constant, layer 1 informative
    ys = np.stack([y, y])
    lm = ftlens.LayerMoments(2, 6, 4, rdms=("inner",)).update(xs, ys)
    with pytest.raises(ValueError, match="zero variance at layer 0"):
        lm.cka()
    for values in (lm.cka(undefined="nan"), lm.cka(debiased=True, undefined="nan"),
                   lm.rsa("inner", undefined="nan"), lm.procrustes(undefined="nan")):
        assert np.isnan(values[0]) and np.isfinite(values[1])
    assert lm.cka(undefined="nan")[1] == pytest.approx(ftlens.cka(x, y), abs=1e-12)
    with pytest.raises(ValueError, match="undefined must be one of"):
        lm.cka(undefined="skip")


def test_zero_rows_in_cosine_rdm(data):
    x, y = data
    x = x.copy()
    x[5] = 0
    with pytest.raises(ValueError, match="X row 5 .* has zero norm.*cosine RDM"):
        ftlens.rsa(x, y, rdm="cosine")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rdm", ["cosine", "correlation"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_in_unit_views_are_named_as_such(data, rdm, dtype, bad):
    x, y = (a.astype(dtype) for a in data)
    x[23, 4] = bad  # not mistaken for a zero-norm row: an infinite norm scales the row by 0
    with pytest.raises(ValueError, match=r"X contains NaN or Inf at layer 0, row 23 \(row 3 of chunk 2\)"):
        ftlens.rsa(x, y, rdm=rdm, chunk_rows=10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_rows_in_the_correlation_rdm(data, dtype):
    x, y = (a.astype(dtype) for a in data)
    x[5] = 0.1  # float64: six copies of 0.1 do not sum to exactly 0.6, so the mean is not exact
    with pytest.raises(ValueError, match="X row 5 .* zero norm after subtracting its mean .*correlation RDM"):
        ftlens.rsa(x, y, rdm="correlation")


@pytest.mark.parametrize("rdm", ["cosine", "correlation"])
def test_a_bad_row_in_a_late_layer_leaves_nothing_accumulated(data, rdm):
    x, y = data
    xs, ys = np.stack([x, x, x]), np.stack([y, y, y])
    moments = ftlens.LayerMoments(3, 6, 4, rdms=(rdm,)).update(xs[:, :25], ys[:, :25])
    bad = ys[:, 25:].copy()
    bad[2, 4] = 0 if rdm == "cosine" else 7.0  # a zero (constant) row in the last layer only
    with pytest.raises(ValueError, match="Y row 29 .* at layer 2 has zero norm"):
        moments.update(xs[:, 25:], bad)
    alone = ftlens.LayerMoments(3, 6, 4, rdms=(rdm,)).update(xs[:, :25], ys[:, :25])
    assert moments.n == 25
    np.testing.assert_array_equal(moments.rsa(rdm), alone.rsa(rdm))
    np.testing.assert_array_equal(moments.cka(), alone.cka())


def test_unknown_options(data):
    x, y = data
    with pytest.raises(ValueError, match="unknown rdm .manhattan.: choose from"):
        ftlens.rsa(x, y, rdm="manhattan")
    with pytest.raises(ValueError, match="unknown compare .spearmann.: choose from"):
        ftlens.rsa(x, y, compare="spearmann")
    with pytest.raises(ValueError, match="streaming moments cannot give"):  # ranks need every pair
        ftlens.Moments(6, 4).update(x, y).rsa(compare="spearman")
    with pytest.raises(ValueError, match="method must be"):
        ftlens.cca(x, y, method="kernel")
    with pytest.raises(ValueError, match="pairs must be"):
        ftlens.LayerMoments(2, 6, 4, pairs="upper")


def test_rdm_not_requested(data):
    x, y = data
    m = ftlens.Moments(6, 4, rdms=("inner",))
    m.update(x, y)
    with pytest.raises(ValueError, match="rdm='correlation' was not requested"):
        m.rsa("correlation")


def test_merging_different_shapes_or_options(data):
    x, y = data
    a = ftlens.Moments(6, 4).update(x, y)
    with pytest.raises(ValueError, match="cannot merge moments with different p"):
        a.merge(ftlens.Moments(5, 4).update(x[:, :5], y))
    with pytest.raises(ValueError, match="different views"):
        a.merge(ftlens.Moments(6, 4, rdms=("inner",)).update(x, y))
    with pytest.raises(ValueError, match="different pairs"):
        ftlens.LayerMoments(1, 6, 4).merge(ftlens.LayerMoments(1, 6, 4, pairs="all"))
    with pytest.raises(TypeError, match="can only merge"):
        a.merge(object())


def test_loading_a_state_dict_that_does_not_fit(data):
    x, y = data
    state = ftlens.Moments(6, 4).update(x, y).state_dict()
    with pytest.raises(ValueError, match="does not fit.*p=6 vs 5"):
        ftlens.Moments(5, 4).load_state_dict(state)
    state.pop("config")
    with pytest.raises(ValueError, match="'raw.x.0.mean' has shape"):
        ftlens.Moments(5, 4).load_state_dict(state)
    del state["raw.xy.0.S"]
    with pytest.raises(ValueError, match="'raw.xy.0.S' is missing"):
        ftlens.Moments(6, 4).load_state_dict(state)


def test_a_damaged_state_dict_is_refused_with_the_entry(data):
    x, y = data
    state = ftlens.Moments(6, 4).update(x, y).state_dict()
    damaged = [({**state, "config": -5}, "'config' must be the dict state_dict\\(\\) saved, got -5"),
               ({**state, "chunks": "many"}, "entry 'chunks' must be a tensor, got str"),
               ({**state, "bogus": "x"}, "entry 'bogus' must be a tensor, got str"),
               ({**state, "raw.xy.0.S": state["raw.xy.0.S"] * np.nan}, "entry 'raw.xy.0.S' holds NaN or Inf")]
    for bad, message in damaged:
        with pytest.raises(ValueError, match=message):
            ftlens.Moments(6, 4).load_state_dict(bad)
    with pytest.raises(TypeError, match="state must be the dict state_dict"):
        ftlens.Moments(6, 4).load_state_dict([1, 2])


def test_float16_overflow_names_its_layer(tmp_path):
    layers = [np.ones((5, 3), np.float32) for _ in range(3)]
    layers[2][1, 1] = 1e6
    with pytest.raises(ValueError, match="layer 2 has values up to 1e\\+06, beyond float16's range"):
        ftlens.store.from_arrays(layers, path=tmp_path / "store", dtype="float16")


def test_measures_before_any_rows():
    with pytest.raises(ValueError, match="CKA needs at least 2 rows, got 0"):
        ftlens.Moments(3, 3).cka()


def test_non_array_input():
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        ftlens.cka("abc", np.ones((3, 3)))


@pytest.mark.skipif(ftlens.build_info()["cuda"], reason="this build has CUDA kernels")
def test_cuda_tensor_in_a_cpu_only_build():
    # A fake tensor carries a CUDA device without a GPU or a CUDA build of torch.
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(1, 5, 3, device="cuda")
    core = ftlens.LayerMoments(1, 3, 3)._core
    with pytest.raises(ValueError, match=r"Moments.update: a CUDA tensor .* no CUDA kernels.*\.cpu\(\)"):
        core.update(x, x)
