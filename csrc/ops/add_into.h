// In-place float64 accumulation of float32 or float64 blocks.
#pragma once

#include <ATen/ATen.h>

namespace ftlens {

// acc += x in place, acc contiguous float64, x float32 or float64 of the same shape,
// without a float64 temporary of x. On the GPU torch's add_ (with promotion) serves.
void add_into(at::Tensor& acc, const at::Tensor& x);

namespace cpu {
void add_into(at::Tensor& acc, const at::Tensor& x);
}

}  // namespace ftlens
