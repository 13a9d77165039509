#!/usr/bin/env bash
# On a machine with a GPU: build ftlens with its CUDA kernels, run every CUDA test against
# the CPU path, and time RBF CKA and Spearman RSA at n = 100,000, d = 768 on the GPU.
# Usage: bash bench/gpu_check.sh   (from the repository root; a CUDA build of torch and nvcc)
set -euo pipefail
PY=${PY:-python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no GPU visible to torch'; print(torch.cuda.get_device_name())"
FTLENS_CUDA=1 $PY -m pip install -q --no-build-isolation --no-deps -e .
$PY -c "import ftlens; info = ftlens.build_info(); print(info); assert info['cuda']"
$PY -m pytest tests/test_cuda.py -q
$PY - <<'PY'
import time
import torch
import ftlens

g = torch.Generator(device="cuda").manual_seed(0)
n, d = 100_000, 768
z = torch.randn(n, 64, device="cuda", generator=g)
x = z @ torch.randn(64, d, device="cuda", generator=g) + torch.randn(n, d, device="cuda", generator=g) + 10
y = z @ torch.randn(64, d, device="cuda", generator=g) + 2 * torch.randn(n, d, device="cuda", generator=g)
for name, call in (("rbf cka", lambda: ftlens.cka(x, y, kernel="rbf", details=True)),
                   ("spearman rsa", lambda: ftlens.rsa(x, y, rdm="euclidean", compare="spearman", details=True))):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = call()
    torch.cuda.synchronize()
    print(f"[gpu {name}] n={n} d={d} seconds={time.perf_counter() - start:.2f} passes={out['passes']} "
          f"value={out['value']:.6f} {torch.cuda.get_device_name()}")
PY
