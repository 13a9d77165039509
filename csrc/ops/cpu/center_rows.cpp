// CPU twin of center_rows: one thread-parallel sweep over the rows.
#include <ATen/Parallel.h>

#include <cmath>

#include "ops/center_rows.h"
#include "ops/cpu/lanes.h"
#include "ops/cpu/simd.h"

namespace ftlens {
namespace cpu {
namespace {

// Columns [j0, j0 + width) of one row (width <= kLanes) into lane k for column j0 + k.
// Restrict parameters and lanes indexed by constants only (as in unit_rows.cpp) keep the
// lanes in registers and let the loop vectorize.
template <typename In, typename Out>
inline FTLENS_WIDE void center_columns(const In* __restrict__ xr, const In* __restrict__ sr, Out* __restrict__ orow,
                                       int64_t j0, int64_t width, double* __restrict__ centered,
                                       double* __restrict__ raw) {
  for (int64_t k = 0; k < kLanes; ++k) {
    if (k >= width) break;
    const In v = xr[j0 + k];
    const Out c = static_cast<Out>(v - sr[j0 + k]);
    orow[j0 + k] = c;
    centered[k] += static_cast<double>(c) * c;
    raw[k] += static_cast<double>(v) * v;
  }
}

template <typename In, typename Out>
void center_rows_impl(const at::Tensor& x, const at::Tensor& shift, at::Tensor& out, at::Tensor& sq_norm,
                      at::Tensor& inv_norm) {
  const int64_t m = x.size(1), d = x.size(2);
  const In* xp = x.data_ptr<In>();
  const In* sp = shift.data_ptr<In>();
  Out* op = out.data_ptr<Out>();
  double* sq = sq_norm.data_ptr<double>();
  double* inv = inv_norm.data_ptr<double>();
  at::parallel_for(0, x.size(0) * m, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const In* xr = xp + row * d;
      const In* sr = sp + (row / m) * d;
      double centered_total = 0.0, raw_total = 0.0;
      run_wide([&]() FTLENS_WIDE {
        double centered[kLanes] = {0.0}, raw[kLanes] = {0.0};  // locals: kept in registers
        const int64_t full = d - d % kLanes;
        for (int64_t j = 0; j < full; j += kLanes) center_columns(xr, sr, op + row * d, j, kLanes, centered, raw);
        for (int64_t j = full; j < d; ++j) center_columns(xr, sr, op + row * d, j, 1, centered, raw);  // lane 0
        centered_total = lane_total(centered);
        raw_total = lane_total(raw);
      });
      sq[row] = centered_total;
      inv[row] = raw_total > 0.0 ? 1.0 / std::sqrt(raw_total) : 0.0;
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x, const at::Tensor& shift,
                                                           at::Tensor out) {
  const int64_t layers = x.size(0), m = x.size(1);
  const at::ScalarType out_dtype = out.scalar_type();
  auto opts = x.options().dtype(at::kDouble);
  auto sq_norm = at::empty({layers, m}, opts);
  auto inv_norm = at::empty({layers, m}, opts);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "center_rows_cpu", [&] {
    if (out_dtype == at::kFloat) {
      center_rows_impl<scalar_t, float>(x, shift, out, sq_norm, inv_norm);
    } else {
      center_rows_impl<scalar_t, double>(x, shift, out, sq_norm, inv_norm);
    }
  });
  return {out, sq_norm, inv_norm};
}

}  // namespace cpu
}  // namespace ftlens
