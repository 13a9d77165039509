// CPU twins of the fused row passes: one thread-parallel sweep over the rows.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "rowops.h"

namespace ftlens {
namespace cpu {
namespace {

// Independent partial sums, so that the compiler can vectorize the float64 reductions
// (one running sum would serialize every addition behind the previous one).
constexpr int64_t kLanes = 8;

double lane_total(const double* lanes) {
  double total = 0.0;
  for (int64_t k = 0; k < kLanes; ++k) total += lanes[k];
  return total;
}

template <typename In, typename Out>
void center_rows_impl(const at::Tensor& x, const at::Tensor& shift, at::Tensor& out,
                      at::Tensor& sq_norm, at::Tensor& inv_norm) {
  const int64_t m = x.size(1), d = x.size(2);
  const In* xp = x.data_ptr<In>();
  const In* sp = shift.data_ptr<In>();
  Out* op = out.data_ptr<Out>();
  double* sq = sq_norm.data_ptr<double>();
  double* inv = inv_norm.data_ptr<double>();
  at::parallel_for(0, x.size(0) * m, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      // Rows, shift and output never overlap: __restrict__ lets the lanes vectorize.
      const In* __restrict__ xr = xp + row * d;
      const In* __restrict__ sr = sp + (row / m) * d;
      Out* __restrict__ orow = op + row * d;
      double centered[kLanes] = {0.0}, raw[kLanes] = {0.0};
      int64_t j = 0;
      for (; j + kLanes <= d; j += kLanes) {
        for (int64_t k = 0; k < kLanes; ++k) {
          const In v = xr[j + k];
          const Out c = static_cast<Out>(v - sr[j + k]);
          orow[j + k] = c;
          centered[k] += static_cast<double>(c) * c;
          raw[k] += static_cast<double>(v) * v;
        }
      }
      for (; j < d; ++j) {
        const In v = xr[j];
        const Out c = static_cast<Out>(v - sr[j]);
        orow[j] = c;
        centered[0] += static_cast<double>(c) * c;
        raw[0] += static_cast<double>(v) * v;
      }
      sq[row] = lane_total(centered);
      const double raw_total = lane_total(raw);
      inv[row] = raw_total > 0.0 ? 1.0 / std::sqrt(raw_total) : 0.0;
    }
  });
}

// sum_j (x_j - shift)^p for p = 1 or 2, in float64 lanes.
template <typename In>
double shifted_power_sum(const In* __restrict__ xr, int64_t d, double shift, int power) {
  double lanes[kLanes] = {0.0};
  int64_t j = 0;
  for (; j + kLanes <= d; j += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) {
      const double c = static_cast<double>(xr[j + k]) - shift;
      lanes[k] += power == 1 ? c : c * c;
    }
  }
  for (; j < d; ++j) {
    const double c = static_cast<double>(xr[j]) - shift;
    lanes[0] += power == 1 ? c : c * c;
  }
  return lane_total(lanes);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x,
                                                           const at::Tensor& shift,
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

at::Tensor column_sums(const at::Tensor& x) {
  constexpr int64_t kBlock = 128;  // columns per task: one cache-friendly strip of rows
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  const int64_t blocks = (d + kBlock - 1) / kBlock;
  auto out = at::empty({layers, d}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "column_sums_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    double* op = out.data_ptr<double>();
    at::parallel_for(0, layers * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t layer = task / blocks, j0 = (task % blocks) * kBlock;
        const int64_t width = std::min(kBlock, d - j0);
        double acc[kBlock] = {0.0};
        const scalar_t* base = xp + layer * m * d + j0;
        for (int64_t row = 0; row < m; ++row) {
          const scalar_t* xr = base + row * d;
          for (int64_t j = 0; j < width; ++j) acc[j] += xr[j];
        }
        for (int64_t j = 0; j < width; ++j) op[layer * d + j0 + j] = acc[j];
      }
    });
  });
  return out;
}

void add_into(at::Tensor& acc, const at::Tensor& x) {
  double* ap = acc.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "add_into_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) ap[i] += xp[i];
    });
  });
}

}  // namespace cpu
}  // namespace ftlens
