// Thin ATen launchers of the CUDA unit_rows kernels.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "ops/cuda/kernels.cuh"
#include "ops/cuda/launch.h"
#include "ops/unit_rows.h"

namespace ftlens {
namespace cuda {

UnitScales unit_row_scales(const at::Tensor& x, bool center) {
  constexpr int64_t kGroups = 64;  // row groups of the column sums, added in order below
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  const auto opts = x.options().dtype(at::kDouble);
  auto row_mean = at::empty({layers, m}, opts), scale = at::empty({layers, m}, opts);
  auto partials = at::empty({layers, kGroups, d}, opts);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "unit_row_scales_cuda", [&] {
    check(cuda_kernels::launch_unit_row_scales<scalar_t>(x.data_ptr<scalar_t>(), row_mean.data_ptr<double>(),
                                                         scale.data_ptr<double>(), partials.data_ptr<double>(),
                                                         layers, m, d, kGroups, center, stream),
          "unit_row_scales");
  });
  return {row_mean, scale, partials.sum(1)};
}

CenteredUnitRows center_unit_rows(const at::Tensor& x, const at::Tensor& row_mean, const at::Tensor& scale,
                                  const at::Tensor& shift, const at::Tensor& h, at::Tensor out) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  auto alpha = at::empty({layers, m}, x.options().dtype(at::kDouble)), inv = at::empty_like(alpha);
  at::Tensor along = h.defined() ? at::empty_like(alpha) : at::Tensor();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "center_unit_rows_cuda", [&] {
    auto run = [&](auto* out_ptr) {
      check(cuda_kernels::launch_center_unit_rows(
                x.data_ptr<scalar_t>(), row_mean.data_ptr<double>(), scale.data_ptr<double>(),
                shift.data_ptr<double>(), h.defined() ? h.data_ptr<double>() : nullptr, out_ptr,
                alpha.data_ptr<double>(), inv.data_ptr<double>(), h.defined() ? along.data_ptr<double>() : nullptr,
                layers, m, d, stream),
            "center_unit_rows");
    };
    if (out.scalar_type() == at::kFloat) {
      run(out.data_ptr<float>());
    } else {
      run(out.data_ptr<double>());
    }
  });
  return {out, alpha, inv, along};
}

}  // namespace cuda
}  // namespace ftlens
