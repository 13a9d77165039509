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

// float64 partials summed over their task dimension `dim`, in task order, in one plain
// loop (a per-task ATen add costs more than the sum at these sizes).
inline at::Tensor sum_over_tasks(const at::Tensor& partials, int64_t dim) {
  const at::Tensor by_task = partials.movedim(dim, 0).contiguous();  // [tasks, ...]
  at::Tensor sums = at::zeros_like(by_task[0], at::MemoryFormat::Contiguous);
  const int64_t tasks = by_task.size(0), size = sums.numel();
  const double* in = by_task.data_ptr<double>();
  double* out = sums.data_ptr<double>();
  for (int64_t t = 0; t < tasks; ++t) {
    for (int64_t j = 0; j < size; ++j) out[j] += in[t * size + j];
  }
  return sums;
}

}  // namespace cpu
}  // namespace ftlens
