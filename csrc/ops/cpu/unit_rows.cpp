// CPU twins of unit_row_scales and center_unit_rows: thread-parallel sweeps over the rows,
// float64 arithmetic in independent lanes.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "ops/cpu/lanes.h"
#include "ops/cpu/row_tasks.h"
#include "ops/cpu/simd.h"
#include "ops/unit_rows.h"

namespace ftlens {
namespace cpu {
namespace {

template <typename In>
void unit_row_scales_impl(const at::Tensor& x, bool center, at::Tensor& row_mean, at::Tensor& scale,
                          at::Tensor& partials) {
  const int64_t m = x.size(1), d = x.size(2);
  const RowTasks split = row_tasks(m);
  const int64_t tasks = split.count;
  const In* xp = x.data_ptr<In>();
  double* rp = row_mean.data_ptr<double>();
  double* sp = scale.data_ptr<double>();
  double* pp = partials.data_ptr<double>();
  at::parallel_for(0, x.size(0) * tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t layer = task / tasks;
        const int64_t first = split.first(task % tasks), last = split.last(task % tasks, m);
      std::fill(pp + task * d, pp + (task + 1) * d, 0.0);
      run_wide([&]() FTLENS_WIDE {
        double* __restrict__ acc = pp + task * d;
        for (int64_t i = first; i < last; ++i) {
          const int64_t row = layer * m + i;
          const In* __restrict__ xr = xp + row * d;
          const double r = center ? shifted_power_sum(xr, d, 0.0, 1) / static_cast<double>(d) : 0.0;
          const double norm = std::sqrt(shifted_power_sum(xr, d, r, 2));
          const double s = norm > 0.0 ? 1.0 / norm : 0.0;
          for (int64_t j = 0; j < d; ++j) acc[j] += (static_cast<double>(xr[j]) - r) * s;
          rp[row] = r;
          sp[row] = s;
        }
      });
    }
  });
}

// Columns [j0, j0 + width) of one row (width <= kLanes) into lane k for column j0 + k.
// Restrict parameters (not captured pointers) let the compiler vectorize the stores and
// sums; the lanes are indexed by constants only (k < kLanes, unrolled), so that the
// caller's lane arrays stay in registers.
template <typename In, typename Out, bool kWithH>
inline FTLENS_WIDE void center_unit_columns(const In* __restrict__ xr, const double* __restrict__ sh,
                                const double* __restrict__ hr, Out* __restrict__ orow, double r, double s,
                                int64_t j0, int64_t width, double* __restrict__ sq, double* __restrict__ unit,
                                double* __restrict__ dot) {
  for (int64_t k = 0; k < kLanes; ++k) {
    if (k >= width) break;
    const int64_t j = j0 + k;
    const double e = (static_cast<double>(xr[j]) - r) * s;
    const double c = e - sh[j];
    orow[j] = static_cast<Out>(c);
    sq[k] += c * c;
    unit[k] += e * e;
    if constexpr (kWithH) dot[k] += c * hr[j];
  }
}

template <typename In, typename Out, bool kWithH>
void center_unit_rows_impl(const at::Tensor& x, const at::Tensor& row_mean, const at::Tensor& scale,
                           const at::Tensor& shift, const at::Tensor& h, at::Tensor& out, at::Tensor& alpha,
                           at::Tensor& inv, at::Tensor& along) {
  const int64_t m = x.size(1), d = x.size(2);
  const In* xp = x.data_ptr<In>();
  const double* rp = row_mean.data_ptr<double>();
  const double* sp = scale.data_ptr<double>();
  const double* shp = shift.data_ptr<double>();
  const double* hp = kWithH ? h.data_ptr<double>() : nullptr;
  Out* op = out.data_ptr<Out>();
  double* ap = alpha.data_ptr<double>();
  double* ip = inv.data_ptr<double>();
  double* wp = kWithH ? along.data_ptr<double>() : nullptr;
  at::parallel_for(0, x.size(0) * m, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t layer = row / m;
      const In* xr = xp + row * d;
      const double* sh = shp + layer * d;
      const double* hr = kWithH ? hp + layer * d : nullptr;
      double sq_total = 0.0, unit_total = 0.0, dot_total = 0.0;
      run_wide([&]() FTLENS_WIDE {
        double sq[kLanes] = {0.0}, unit[kLanes] = {0.0}, dot[kLanes] = {0.0};  // locals: kept in registers
        const int64_t full = d - d % kLanes;
        for (int64_t j = 0; j < full; j += kLanes) {
          center_unit_columns<In, Out, kWithH>(xr, sh, hr, op + row * d, rp[row], sp[row], j, kLanes, sq, unit,
                                               dot);
        }
        center_unit_columns<In, Out, kWithH>(xr, sh, hr, op + row * d, rp[row], sp[row], full, d - full, sq, unit,
                                             dot);
        sq_total = lane_total(sq);
        unit_total = lane_total(unit);
        if constexpr (kWithH) dot_total = lane_total(dot);
      });
      ap[row] = sq_total;
      ip[row] = unit_total > 0.0 ? 1.0 / std::sqrt(unit_total) : 0.0;
      if constexpr (kWithH) wp[row] = dot_total;
    }
  });
}

}  // namespace

UnitScales unit_row_scales(const at::Tensor& x, bool center) {
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  const auto opts = x.options().dtype(at::kDouble);
  auto row_mean = at::empty({layers, m}, opts), scale = at::empty({layers, m}, opts);
  auto partials = at::empty({layers, row_tasks(m).count, d}, opts);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "unit_row_scales_cpu",
                             [&] { unit_row_scales_impl<scalar_t>(x, center, row_mean, scale, partials); });
  return {row_mean, scale, sum_over_tasks(partials, 1)};
}

CenteredUnitRows center_unit_rows(const at::Tensor& x, const at::Tensor& row_mean, const at::Tensor& scale,
                                  const at::Tensor& shift, const at::Tensor& h, at::Tensor out) {
  const auto opts = x.options().dtype(at::kDouble);
  auto alpha = at::empty({x.size(0), x.size(1)}, opts), inv = at::empty_like(alpha);
  at::Tensor along = h.defined() ? at::empty_like(alpha) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "center_unit_rows_cpu", [&] {
    auto run = [&](auto out_tag, auto with_h) {
      using Out = decltype(out_tag);
      center_unit_rows_impl<scalar_t, Out, decltype(with_h)::value>(x, row_mean, scale, shift, h, out, alpha, inv,
                                                                   along);
    };
    const bool with_h = h.defined();
    if (out.scalar_type() == at::kFloat) {
      with_h ? run(float{}, std::true_type{}) : run(float{}, std::false_type{});
    } else {
      with_h ? run(double{}, std::true_type{}) : run(double{}, std::false_type{});
    }
  });
  return {out, alpha, inv, along};
}

}  // namespace cpu
}  // namespace ftlens
