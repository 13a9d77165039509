#include "tiles/permute_pairs.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <c10/util/Exception.h>
#include <string>
#include <vector>

namespace ftlens {

at::Tensor permute_pairs(const at::Tensor& values, const at::Tensor& order) {
  if (!values.is_cpu() || !order.is_cpu()) C10_THROW_ERROR(ValueError, "permute_pairs runs on CPU tensors");
  if (values.dim() != 1 || values.scalar_type() != at::kDouble)
    C10_THROW_ERROR(ValueError, "permute_pairs: values must be 1-D float64 (pairs i < j)");
  if (order.dim() != 1 || order.scalar_type() != at::kLong)
    C10_THROW_ERROR(ValueError, "permute_pairs: order must be 1-D int64");
  const int64_t n = order.size(0);
  if (values.size(0) != n * (n - 1) / 2)
    C10_THROW_ERROR(ValueError, "permute_pairs: " + std::to_string(values.size(0)) + " values are not the " +
                                std::to_string(n * (n - 1) / 2) + " pairs of " + std::to_string(n) + " rows");
  const at::Tensor o = order.contiguous();
  const int64_t* op = o.data_ptr<int64_t>();
  std::vector<char> seen(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (op[i] < 0 || op[i] >= n || seen[op[i]])
      C10_THROW_ERROR(ValueError, "permute_pairs: order is not a permutation of 0.." + std::to_string(n - 1));
    seen[op[i]] = 1;
  }
  const at::Tensor v = values.contiguous();
  at::Tensor out = at::empty_like(v);
  const double* vp = v.data_ptr<double>();
  double* outp = out.data_ptr<double>();
  // Row a of the upper triangle starts at a * n - a (a + 1) / 2 and holds columns a+1..n-1.
  auto row_start = [n](int64_t a) { return a * n - a * (a + 1) / 2 - a - 1; };
  at::parallel_for(0, n - 1, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t oi = op[i];
      double* dst = outp + row_start(i) + i + 1;
      for (int64_t j = i + 1; j < n; ++j) {
        const int64_t a = std::min(oi, op[j]), b = std::max(oi, op[j]);
        dst[j - i - 1] = vp[row_start(a) + b];
      }
    }
  });
  return out;
}

}  // namespace ftlens
