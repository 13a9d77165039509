// The products of row blocks that the moments need, shared out among at most a few CPU
// threads as single-threaded GEMMs. The Gram matrix X^T X comes from the GEMMs of its
// upper triangle only: panels of columns, each one GEMM against the columns from its own
// onward, mirrored below the diagonal (a BLAS syrk, which torch does not expose).
#pragma once

#include <ATen/ATen.h>

namespace ftlens {

// x: [m, d] -> out: [d, d] in x's dtype (contiguous), exactly symmetric from 256 columns on
// (one plain GEMM below); returns out.
at::Tensor& gram_into(const at::Tensor& x, at::Tensor& out);

// x: [m, p], y: [m, q] -> out: [p, q] = x^T y (contiguous); returns out.
at::Tensor& cross_into(const at::Tensor& x, const at::Tensor& y, at::Tensor& out);

// x: [m, d] -> [d, d] in x's dtype, as gram_into.
at::Tensor gram(const at::Tensor& x);

}  // namespace ftlens
