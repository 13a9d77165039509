// CPU twin of column_sums: blocks of whole rows, one task each, read front to back into the
// task's own float64 partial sums (ops/cpu/row_tasks.h).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/column_sums.h"
#include "ops/cpu/row_tasks.h"
#include "ops/cpu/simd.h"

namespace ftlens {
namespace cpu {
namespace {

template <typename T>
void add_rows(const T* rows, int64_t count, int64_t d, double* acc_out, T* peak_out) {
  run_wide([&]() FTLENS_WIDE {
    double* __restrict__ acc = acc_out;
    T* __restrict__ peak = peak_out;
    for (int64_t i = 0; i < count; ++i) {
      const T* __restrict__ xr = rows + i * d;
      for (int64_t j = 0; j < d; ++j) {
        acc[j] += xr[j];
        peak[j] = std::max(peak[j], std::abs(xr[j]));
      }
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> column_sums(const at::Tensor& x) {
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  const RowTasks split = row_tasks(m);
  const int64_t tasks = split.count;
  auto partials = at::zeros({layers, tasks, d}, x.options().dtype(at::kDouble));
  auto peaks = at::zeros({layers, tasks}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "column_sums_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    double* pp = partials.data_ptr<double>();
    double* kp = peaks.data_ptr<double>();
    at::parallel_for(0, layers * tasks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t layer = task / tasks;
        const int64_t first = split.first(task % tasks), last = split.last(task % tasks, m);
        // Per column, not one running maximum: a float max reduction does not vectorize.
        std::vector<scalar_t> column_peak(d, 0);  // NaN-blind; a NaN shows in the sums instead
        add_rows(xp + (layer * m + first) * d, last - first, d, pp + task * d, column_peak.data());
        kp[task] = static_cast<double>(*std::max_element(column_peak.begin(), column_peak.end()));
      }
    });
  });
  return {sum_over_tasks(partials, 1), std::get<0>(peaks.max(1))};
}

}  // namespace cpu
}  // namespace ftlens
