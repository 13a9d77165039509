// CPU twin of normalize_rows: one thread-parallel sweep over the rows.
#include <ATen/Parallel.h>

#include <cmath>

#include "ops/cpu/lanes.h"
#include "ops/normalize_rows.h"

namespace ftlens {
namespace cpu {

std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center, at::Tensor out) {
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  auto zero_rows = at::zeros({layers * m}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "normalize_rows_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    double* op = out.data_ptr<double>();
    int64_t* zp = zero_rows.data_ptr<int64_t>();
    at::parallel_for(0, layers * m, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const scalar_t* xr = xp + row * d;
        double* orow = op + row * d;
        const double mean = center ? shifted_power_sum(xr, d, 0.0, 1) / static_cast<double>(d) : 0.0;
        const double norm = std::sqrt(shifted_power_sum(xr, d, mean, 2));
        const bool zero = !(norm > 0.0);
        const double scale = zero ? 0.0 : 1.0 / norm;
        for (int64_t j = 0; j < d; ++j) orow[j] = (xr[j] - mean) * scale;
        zp[row] = zero ? 1 : 0;
      }
    });
  });
  return {out, zero_rows.view({layers, m}).sum(1)};
}

}  // namespace cpu
}  // namespace ftlens
