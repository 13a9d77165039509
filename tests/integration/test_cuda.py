"""The CUDA path (kernels in csrc/cuda, GEMMs on the GPU) against the same float64 dense
references as the CPU path. Runs only on a machine with a GPU and a CUDA build of ftlens
(`FTLENS_CUDA=1`); the CPU-only build's error for CUDA tensors is tested in test_errors."""

import ftlens
import numpy as np
import pytest
import torch
from helpers import reference as ref
from helpers.data import offset_data
from helpers.measures import assert_close, measures, references, streamed

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and ftlens.build_info()["cuda"]),
    reason="needs a GPU and ftlens built with its CUDA kernels",
)

CASES = {
    "narrow": dict(),  # p, q < 256: full own products
    "wide": dict(n=600, p=301, q=258, seed=3),  # panelled upper-triangle own products
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_cuda_matches_dense_reference(case, dtype, rtol):
    x, y = (torch.from_numpy(a).to(dtype) for a in offset_data(**CASES[case]))
    want = references(x.double().numpy(), y.double().numpy())
    for chunk in (None, 7, 250):
        assert_close(measures(streamed(x.cuda(), y.cuda(), chunk)), want, rtol=rtol)


@pytest.mark.parametrize("rdm, row", [("cosine", 0.0), ("correlation", 7.0)])
def test_zero_norm_rows_found_by_the_kernels(rdm, row):
    # a zero row has no direction; a constant row has none once row-centered
    x, y = offset_data(n=80, seed=5)
    x[3] = row
    lm = ftlens.LayerMoments(1, x.shape[1], y.shape[1], rdms=(rdm,))
    with pytest.raises(ValueError, match=f"X row 3 .* zero norm.*so its {rdm} RDM"):
        lm.update(torch.from_numpy(x[None]).cuda(), torch.from_numpy(y[None]).cuda())


def test_all_pairs_and_merge_with_a_cpu_shard():
    rng = np.random.default_rng(2)
    xs, ys = rng.normal(size=(3, 200, 6)) + 40.0, rng.normal(size=(3, 200, 4))
    gpu = ftlens.LayerMoments(3, 6, 4, pairs="all", rdms=("correlation",), chunk_rows=64)
    gpu.update(torch.from_numpy(xs[:, :120]).cuda(), torch.from_numpy(ys[:, :120]).cuda())
    cpu = ftlens.LayerMoments(3, 6, 4, pairs="all", rdms=("correlation",), chunk_rows=64)
    cpu.update(xs[:, 120:], ys[:, 120:])
    gpu.merge(cpu)
    for a in range(3):
        for b in range(3):
            assert gpu.cka()[a, b] == pytest.approx(ref.cka(xs[a], ys[b]), rel=1e-9)
            assert gpu.rsa()[a, b] == pytest.approx(ref.rsa(xs[a], ys[b]), rel=1e-9)


def test_nan_on_the_gpu_names_layer_and_row():
    x, y = offset_data(n=50)
    x[17, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or Inf at layer 0, row 17"):
        ftlens.cka(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_logistic_op_matches_the_cpu_path(dtype):
    from ftlens._core import _C

    g = torch.Generator().manual_seed(0)
    xs = (torch.randn(3, 500, 40, generator=g) * 2 + 20).to(dtype)
    shift, scale = xs.double().mean(1), 1 / xs.double().std(1)
    offsets = torch.tensor([0, 17, 67, 70])
    labels = torch.stack([torch.randint(0, k, (500,), generator=g) for k in (17, 50, 3)], 1)
    labels[::5, 2] = -1
    w = torch.randn(3, 40, 70, generator=g, dtype=torch.float64) * 0.1
    b = torch.randn(3, 70, generator=g, dtype=torch.float64) * 0.1
    cpu = _C.logistic_loss_grad(xs, shift, scale, w, b, labels, offsets)
    gpu = _C.logistic_loss_grad(xs.cuda(), shift.cuda(), scale.cuda(), w.cuda(), b.cuda(), labels.cuda(),
                                offsets.cuda())
    for a, e in zip(gpu, cpu, strict=True):
        np.testing.assert_allclose(a.cpu().numpy(), e.numpy(), rtol=1e-5, atol=1e-5 * e.abs().max().item())
    predicted = _C.linear_predict(xs.cuda(), shift.cuda(), scale.cuda(), w.cuda(), b.cuda(), offsets.cuda())
    agree = (predicted.cpu() == _C.linear_predict(xs, shift, scale, w, b, offsets)).double().mean()
    assert agree > 0.999  # float32 ties aside


PAIRWISE = {
    "rbf cka (every pair held)": lambda x, y: ftlens.cka(x, y, kernel="rbf"),
    "rbf cka (histogram + select)": lambda x, y: ftlens.cka(x, y, kernel="rbf", memory_budget=2**20),
    "debiased cosine cka": lambda x, y: ftlens.cka(x, y, kernel="cosine", debiased=True),
    "linear cka over tiles": lambda x, y: ftlens.cka(x, y, method="tiles"),
    "spearman exact": lambda x, y: ftlens.rsa(x, y, rdm="euclidean", compare="spearman", exact=True),
    "spearman sketch": lambda x, y: ftlens.rsa(x, y, rdm="euclidean", compare="spearman", exact=False),
    "kendall": lambda x, y: ftlens.rsa(x, y, rdm="cosine", compare="kendall"),
    "pearson euclidean": lambda x, y: ftlens.rsa(x, y, rdm="euclidean"),
    "correlation rdm over tiles": lambda x, y: ftlens.rsa(x, y, method="tiles"),
    "minibatch cka": lambda x, y: ftlens.minibatch_cka(x, y, batch_size=128, kernel="rbf")["value"],
}


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_pairwise_tiles_on_the_gpu_match_the_cpu(name, dtype, tol):
    x, y = (torch.from_numpy(a).to(dtype) for a in offset_data(n=700, seed=9))
    assert PAIRWISE[name](x.cuda(), y.cuda()) == pytest.approx(PAIRWISE[name](x, y), abs=tol)


def test_pairwise_tiles_refuse_mixed_devices():
    x, y = (torch.from_numpy(a) for a in offset_data(n=50, seed=2))
    with pytest.raises(ValueError, match="same device"):
        ftlens.cka(x.cuda(), y, kernel="rbf")
