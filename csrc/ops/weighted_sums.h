// Weighted sums of rows, sum_i v_i x_i for a few weight vectors v: the row-norm terms of
// RSA and the unit sums of the moments.
#pragma once

#include <ATen/ATen.h>

namespace ftlens {

// rows: [m, d] float32 or float64; weights: [k, m] float64. Returns [d, k] float64, column
// w = sum_i weights[w, i] rows[i]. On the CPU one sweep over the rows accumulates in
// float64 (a k-row GEMM is bound by reading the rows and runs far below that in BLAS);
// elsewhere a GEMM in the rows' dtype serves.
at::Tensor weighted_sums(const at::Tensor& rows, const at::Tensor& weights);

namespace cpu {
at::Tensor weighted_sums(const at::Tensor& rows, const at::Tensor& weights);
}

}  // namespace ftlens
