// CPU twins of the fused row passes: one thread-parallel sweep over the rows.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "rowops.h"

namespace ftlens {
namespace cpu {
namespace {

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
      const In* xr = xp + row * d;
      const In* sr = sp + (row / m) * d;
      Out* orow = op + row * d;
      double centered = 0.0, raw = 0.0;
      for (int64_t j = 0; j < d; ++j) {
        const In v = xr[j];
        const Out c = static_cast<Out>(v - sr[j]);
        orow[j] = c;
        centered += static_cast<double>(c) * c;
        raw += static_cast<double>(v) * v;
      }
      sq[row] = centered;
      inv[row] = raw > 0.0 ? 1.0 / std::sqrt(raw) : 0.0;
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x,
                                                           const at::Tensor& shift,
                                                           at::ScalarType out_dtype) {
  const int64_t layers = x.size(0), m = x.size(1);
  auto out = at::empty(x.sizes(), x.options().dtype(out_dtype));
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

std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center) {
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  auto out = at::empty(x.sizes(), x.options().dtype(at::kDouble));
  auto zero_rows = at::zeros({layers * m}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "normalize_rows_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    double* op = out.data_ptr<double>();
    int64_t* zp = zero_rows.data_ptr<int64_t>();
    at::parallel_for(0, layers * m, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const scalar_t* xr = xp + row * d;
        double* orow = op + row * d;
        double mean = 0.0;
        if (center) {
          for (int64_t j = 0; j < d; ++j) mean += xr[j];
          mean /= static_cast<double>(d);
        }
        double norm = 0.0;
        for (int64_t j = 0; j < d; ++j) {
          const double c = xr[j] - mean;
          norm += c * c;
        }
        norm = std::sqrt(norm);
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
