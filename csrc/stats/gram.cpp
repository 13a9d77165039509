#include "stats/gram.h"

#include <algorithm>

namespace ftlens {

at::Tensor gram(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 2, "gram: expected rows [m, d]");
  const int64_t d = x.size(1);
  // blocks of about 256 columns keep each GEMM large enough to run at full speed
  const int64_t blocks = std::max<int64_t>(1, (d + 128) / 256), width = (d + blocks - 1) / blocks;
  if (blocks == 1) return at::mm(x.t(), x);
  at::Tensor out = at::empty({d, d}, x.options());
  for (int64_t i = 0; i < d; i += width) {
    const int64_t wi = std::min(width, d - i);
    const at::Tensor xi = x.narrow(1, i, wi);
    for (int64_t j = i; j < d; j += width) {
      const int64_t wj = std::min(width, d - j);
      at::Tensor block = out.narrow(0, i, wi).narrow(1, j, wj);
      at::mm_out(block, xi.t(), x.narrow(1, j, wj));
    }
  }
  // the lower triangle is the upper one's mirror (a diagonal block's own GEMM is symmetric
  // only up to rounding, so its lower half is replaced too)
  return out.triu().add_(out.triu(1).t());
}

}  // namespace ftlens
