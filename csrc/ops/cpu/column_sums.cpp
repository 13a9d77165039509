// CPU twin of column_sums: strips of columns, one task each.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "ops/column_sums.h"

namespace ftlens {
namespace cpu {

std::tuple<at::Tensor, at::Tensor> column_sums(const at::Tensor& x) {
  constexpr int64_t kBlock = 128;  // columns per task: one cache-friendly strip of rows
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  const int64_t blocks = (d + kBlock - 1) / kBlock;
  auto out = at::empty({layers, d}, x.options().dtype(at::kDouble));
  auto peaks = at::empty({layers, blocks}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "column_sums_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    double* op = out.data_ptr<double>();
    double* pp = peaks.data_ptr<double>();
    at::parallel_for(0, layers * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t layer = task / blocks, j0 = (task % blocks) * kBlock;
        const int64_t width = std::min(kBlock, d - j0);
        double acc[kBlock] = {0.0};
        scalar_t peak[kBlock] = {0};  // NaN-blind; a NaN shows in the sums instead
        const scalar_t* base = xp + layer * m * d + j0;
        for (int64_t row = 0; row < m; ++row) {
          const scalar_t* xr = base + row * d;
          for (int64_t j = 0; j < width; ++j) {
            acc[j] += xr[j];
            peak[j] = std::max(peak[j], std::abs(xr[j]));
          }
        }
        double task_peak = 0.0;
        for (int64_t j = 0; j < width; ++j) {
          op[layer * d + j0 + j] = acc[j];
          task_peak = std::max(task_peak, static_cast<double>(peak[j]));
        }
        pp[task] = task_peak;
      }
    });
  });
  return {out, std::get<0>(peaks.max(1))};
}

}  // namespace cpu
}  // namespace ftlens
