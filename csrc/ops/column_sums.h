// Column sums of row stacks, accumulated in float64, with the largest magnitude per layer.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace ftlens {

// Column sums of x [L, m, d] in float64 without a float64 copy of x: [L, d], and the
// largest |x| of each layer as float64 [L] (NaN where a value is NaN), in one pass. On the
// GPU the cast is cheap next to the reductions, so torch's own serve (no CUDA twin).
std::tuple<at::Tensor, at::Tensor> column_sums(const at::Tensor& x);

namespace cpu {
std::tuple<at::Tensor, at::Tensor> column_sums(const at::Tensor& x);
}

}  // namespace ftlens
