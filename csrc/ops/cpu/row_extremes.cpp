// CPU twin of row_extremes: one thread-parallel sweep over the rows.
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

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
        const scalar_t* __restrict__ xr = xp + row * d;
        scalar_t a = std::numeric_limits<scalar_t>::infinity(), b = -a;
        bool nan = false;
        for (int64_t j = 0; j < d; ++j) {
          a = xr[j] < a ? xr[j] : a;
          b = xr[j] > b ? xr[j] : b;
          nan |= xr[j] != xr[j];
        }
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
