// Standardized rows for the probes: (x - shift) * scale in one sweep, reading the store's
// dtype (float16 included) and writing float32 (float64 for float64 rows).
#pragma once

#include <ATen/ATen.h>

namespace ftlens {

// x: [L, m, d] float16, float32 or float64; shift, scale: [L, d] -> [L, m, d] float32
// (float64 when x is), written into `out` where given (a contiguous tensor of that shape
// and dtype, e.g. a scratch buffer). On the GPU ATen's elementwise ops serve (no CUDA twin).
at::Tensor scale_rows(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale,
                      at::Tensor out = at::Tensor());

namespace cpu {
at::Tensor scale_rows(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale, at::Tensor out);
}

}  // namespace ftlens
