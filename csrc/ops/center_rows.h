// Rows minus a per-layer shift, with their squared norms, in one read and one write.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace ftlens {

// x: [L, m, d] float or double, shift: [L, d] of the same dtype.
// Returns (x - shift in out_dtype (float or double), ||x_i - shift||^2 as float64 [L, m],
// 1/||x_i|| as float64 [L, m], 0 where a raw row is all zeros). `out`, when given,
// receives the centered rows (a reused buffer of x's shape and out_dtype).
std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x, const at::Tensor& shift,
                                                           at::ScalarType out_dtype, const at::Tensor& out = {});

namespace cpu {
std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x, const at::Tensor& shift,
                                                           at::Tensor out);
}
#ifdef FTLENS_WITH_CUDA
namespace cuda {
std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x, const at::Tensor& shift,
                                                           at::Tensor out);
}
#endif

}  // namespace ftlens
