// Row sweeps that sum over rows into float64 partials, one per task: the rows are split by
// their count alone and the partials added in task order, so the sums do not depend on the
// number of threads.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>

namespace ftlens {
namespace cpu {

struct RowTasks {
  int64_t step, count;  // rows per task (the last may hold fewer), tasks
  int64_t first(int64_t task) const { return task * step; }
  int64_t last(int64_t task, int64_t m) const { return std::min(m, (task + 1) * step); }
};

// At least 64 rows per task, at most 64 tasks.
inline RowTasks row_tasks(int64_t m) {
  constexpr int64_t kMinRows = 64, kMaxTasks = 64;
  const int64_t step = std::max(kMinRows, (m + kMaxTasks - 1) / kMaxTasks);
  return {step, std::max<int64_t>(1, (m + step - 1) / step)};
}

// partials summed over their task dimension `dim`, in task order.
inline at::Tensor sum_over_tasks(const at::Tensor& partials, int64_t dim) {
  at::Tensor sums = at::zeros_like(partials.select(dim, 0));
  for (int64_t t = 0; t < partials.size(dim); ++t) sums.add_(partials.select(dim, t));
  return sums;
}

}  // namespace cpu
}  // namespace ftlens
