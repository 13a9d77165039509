// Column sums of row stacks, accumulated in float64.
#pragma once

#include <torch/extension.h>

namespace ftlens {

// Column sums of x [L, m, d] in float64 without a float64 copy of x: [L, d]. On the GPU
// the cast is cheap next to the reduction, so torch's own sum serves (no CUDA twin).
at::Tensor column_sums(const at::Tensor& x);

namespace cpu {
at::Tensor column_sums(const at::Tensor& x);
}

}  // namespace ftlens
