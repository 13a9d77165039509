// Rows scaled to unit norm (optionally after subtracting each row's own mean).
#pragma once

#include <torch/extension.h>

#include <tuple>

namespace ftlens {

// Each row of x [L, m, d] scaled to unit norm, after subtracting its own mean over features
// when `center` (the rows of a correlation RDM). Returns (float64 rows, count of zero-norm
// rows [L]); zero-norm rows come back as zeros. The rows stay in float64 so that the chunk
// centering that follows keeps the small differences between nearly parallel rows. `out`,
// when given, is a float64 buffer of x's shape that receives the rows.
std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center, const at::Tensor& out = {});

namespace cpu {
std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center, at::Tensor out);
}
#ifdef FTLENS_WITH_CUDA
namespace cuda {
std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center, at::Tensor out);
}
#endif

}  // namespace ftlens
