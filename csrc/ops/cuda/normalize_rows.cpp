// Thin ATen launcher of the CUDA normalize_rows kernel.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "ops/cuda/kernels.cuh"
#include "ops/cuda/launch.h"
#include "ops/normalize_rows.h"

namespace ftlens {
namespace cuda {

std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center, at::Tensor out) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  auto zero_rows = at::empty({layers * m}, x.options().dtype(at::kLong));
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "normalize_rows_cuda", [&] {
    check(cuda_kernels::launch_normalize_rows<scalar_t>(
              x.data_ptr<scalar_t>(), out.data_ptr<double>(), zero_rows.data_ptr<int64_t>(),
              layers * m, d, center, stream),
          "normalize_rows");
  });
  return {out, zero_rows.view({layers, m}).sum(1)};
}

}  // namespace cuda
}  // namespace ftlens
