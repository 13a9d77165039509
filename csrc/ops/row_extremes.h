// The smallest and largest value of every row, in one pass.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace ftlens {

// x: [L, m, d] float or double -> (min, max), each [L, m] in x's dtype (NaN where a row
// holds a NaN). Tells all-zero rows (min = max = 0) and constant rows (min = max) apart
// before any row is normalized. On the GPU torch's aminmax serves (no CUDA twin).
std::tuple<at::Tensor, at::Tensor> row_extremes(const at::Tensor& x);

namespace cpu {
std::tuple<at::Tensor, at::Tensor> row_extremes(const at::Tensor& x);
}

}  // namespace ftlens
