// Thin ATen launcher of the CUDA center_rows kernel.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "ops/cuda/kernels.cuh"
#include "ops/cuda/launch.h"
#include "ops/center_rows.h"

namespace ftlens {
namespace cuda {

std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x,
                                                           const at::Tensor& shift,
                                                           at::Tensor out) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  const at::ScalarType out_dtype = out.scalar_type();
  auto opts = x.options().dtype(at::kDouble);
  auto sq_norm = at::empty({layers, m}, opts);
  auto inv_norm = at::empty({layers, m}, opts);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "center_rows_cuda", [&] {
    auto launch = [&](auto* out_ptr) {
      check(cuda_kernels::launch_center_rows(x.data_ptr<scalar_t>(), shift.data_ptr<scalar_t>(),
                                             out_ptr, sq_norm.data_ptr<double>(),
                                             inv_norm.data_ptr<double>(), layers, m, d, stream),
            "center_rows");
    };
    if (out_dtype == at::kFloat) {
      launch(out.data_ptr<float>());
    } else {
      launch(out.data_ptr<double>());
    }
  });
  return {out, sq_norm, inv_norm};
}

}  // namespace cuda
}  // namespace ftlens
