// CPU twin of row_extremes: one thread-parallel sweep over the rows.
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "ops/cpu/simd.h"
#include "ops/row_extremes.h"

namespace ftlens {
namespace cpu {

std::tuple<at::Tensor, at::Tensor> row_extremes(const at::Tensor& x) {
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  auto lo = at::empty({layers, m}, x.options());
  auto hi = at::empty({layers, m}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "row_extremes_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* lp = lo.data_ptr<scalar_t>();
    scalar_t* hp = hi.data_ptr<scalar_t>();
    at::parallel_for(0, layers * m, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        scalar_t a = std::numeric_limits<scalar_t>::infinity(), b = -a;
        bool nan = false;
        run_wide([&]() FTLENS_WIDE {
          const scalar_t* __restrict__ xr = xp + row * d;
          // Independent lanes: a single running min/max (a float reduction) does not vectorize.
          constexpr int64_t kWidth = 8;
          scalar_t lo_lane[kWidth], hi_lane[kWidth];
          bool nan_lane[kWidth] = {false};
          for (int64_t k = 0; k < kWidth; ++k) {
            lo_lane[k] = std::numeric_limits<scalar_t>::infinity();
            hi_lane[k] = -lo_lane[k];
          }
          int64_t j = 0;
          for (; j + kWidth <= d; j += kWidth) {
            for (int64_t k = 0; k < kWidth; ++k) {
              const scalar_t v = xr[j + k];
              lo_lane[k] = v < lo_lane[k] ? v : lo_lane[k];
              hi_lane[k] = v > hi_lane[k] ? v : hi_lane[k];
              nan_lane[k] |= v != v;
            }
          }
          for (; j < d; ++j) {
            a = xr[j] < a ? xr[j] : a;
            b = xr[j] > b ? xr[j] : b;
            nan |= xr[j] != xr[j];
          }
          for (int64_t k = 0; k < kWidth; ++k) {
            a = lo_lane[k] < a ? lo_lane[k] : a;
            b = hi_lane[k] > b ? hi_lane[k] : b;
            nan |= nan_lane[k];
          }
        });
        const scalar_t quiet = std::numeric_limits<scalar_t>::quiet_NaN();
        lp[row] = nan ? quiet : a;
        hp[row] = nan ? quiet : b;
      }
    });
  });
  return {lo, hi};
}

}  // namespace cpu
}  // namespace ftlens
