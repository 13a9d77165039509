// CPU twin of weighted_sums: blocks of rows, one task each, into the task's own float64
// partial sums (ops/cpu/row_tasks.h).
#include <ATen/Parallel.h>

#include <algorithm>

#include "ops/cpu/row_tasks.h"
#include "ops/cpu/simd.h"
#include "ops/weighted_sums.h"

namespace ftlens {
namespace cpu {
namespace {

constexpr int64_t kMaxWeights = 6;  // more weights take several sweeps
constexpr int64_t kRowBlock = 4;    // rows per sweep: each partial sum is loaded and stored once per block

// acc[w, :] += sum over the rows r of the block of v[w, r] * rows[r, :], for K weights.
template <int64_t K, typename T>
inline FTLENS_WIDE void add_row_block(const T* __restrict__ rows, int64_t count, int64_t d, const double* __restrict__ v,
                   int64_t v_stride, double* __restrict__ acc) {
  double weight[K][kRowBlock] = {};
  for (int64_t w = 0; w < K; ++w)
    for (int64_t r = 0; r < count; ++r) weight[w][r] = v[w * v_stride + r];
  const T* __restrict__ r0 = rows;
  const T* __restrict__ r1 = count > 1 ? rows + d : rows;  // missing rows carry weight 0
  const T* __restrict__ r2 = count > 2 ? rows + 2 * d : rows;
  const T* __restrict__ r3 = count > 3 ? rows + 3 * d : rows;
  for (int64_t j = 0; j < d; ++j) {
    const double x0 = r0[j], x1 = r1[j], x2 = r2[j], x3 = r3[j];
    for (int64_t w = 0; w < K; ++w) {
      acc[w * d + j] += weight[w][0] * x0 + weight[w][1] * x1 + weight[w][2] * x2 + weight[w][3] * x3;
    }
  }
}

template <int64_t K, typename T>
void add_rows(const T* rows, int64_t first, int64_t last, int64_t m, int64_t d, const double* v, double* acc) {
  run_wide([&]() FTLENS_WIDE {
    for (int64_t i = first; i < last; i += kRowBlock) {
      add_row_block<K>(rows + i * d, std::min(kRowBlock, last - i), d, v + i, m, acc);
    }
  });
}

template <typename T>
void add_rows_any(int64_t k, const T* rows, int64_t first, int64_t last, int64_t m, int64_t d, const double* v,
                  double* acc) {
  for (int64_t w0 = 0; w0 < k; w0 += kMaxWeights) {
    const double* vw = v + w0 * m;
    double* aw = acc + w0 * d;
    switch (std::min(kMaxWeights, k - w0)) {
      case 1: add_rows<1>(rows, first, last, m, d, vw, aw); break;
      case 2: add_rows<2>(rows, first, last, m, d, vw, aw); break;
      case 3: add_rows<3>(rows, first, last, m, d, vw, aw); break;
      case 4: add_rows<4>(rows, first, last, m, d, vw, aw); break;
      case 5: add_rows<5>(rows, first, last, m, d, vw, aw); break;
      default: add_rows<6>(rows, first, last, m, d, vw, aw); break;
    }
  }
}

}  // namespace

at::Tensor weighted_sums(const at::Tensor& rows, const at::Tensor& weights) {
  const int64_t m = rows.size(0), d = rows.size(1), k = weights.size(0);
  const RowTasks split = row_tasks(m);
  const int64_t tasks = split.count;
  auto partials = at::zeros({tasks, k, d}, rows.options().dtype(at::kDouble));
  const double* wp = weights.data_ptr<double>();
  double* pp = partials.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "weighted_sums_cpu", [&] {
    const scalar_t* xp = rows.data_ptr<scalar_t>();
    at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        add_rows_any(k, xp, split.first(task), split.last(task, m), m, d, wp, pp + task * k * d);
      }
    });
  });
  return sum_over_tasks(partials, 0).t();  // [d, k]
}

}  // namespace cpu
}  // namespace ftlens
