// Fused per-row passes over activation chunks, with CPU and CUDA twins.
#pragma once

#include <torch/extension.h>

#include <tuple>

namespace ftlens {

// x: [L, m, d] float or double, shift: [L, d] of the same dtype.
// Returns (x - shift in out_dtype (float or double), ||x_i - shift||^2 as float64 [L, m],
// 1/||x_i|| as float64 [L, m], 0 where a raw row is all zeros). One read, one write.
// `out`, when given, receives the centered rows (a reused buffer of x's shape and out_dtype:
// a fresh multi-megabyte tensor costs a page fault per 4 KiB on first touch).
std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x,
                                                           const at::Tensor& shift,
                                                           at::ScalarType out_dtype,
                                                           const at::Tensor& out = {});

// Column sums of x [L, m, d] accumulated in float64 without a float64 copy of x: [L, d].
at::Tensor column_sums(const at::Tensor& x);

// acc += x in place, acc float64, x float32 or float64 of the same shape, without a
// float64 temporary of x.
void add_into(at::Tensor& acc, const at::Tensor& x);

// Each row scaled to unit norm, after subtracting its own mean over features when
// `center` (the rows of a correlation RDM). Returns (float64 rows, count of zero-norm
// rows [L]); zero-norm rows come back as zeros. The rows stay in float64 so that the
// chunk centering that follows keeps the small differences between nearly parallel rows.
// `out`, when given, is a float64 buffer of x's shape that receives the rows.
std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center,
                                                  const at::Tensor& out = {});

namespace cpu {
std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x,
                                                           const at::Tensor& shift,
                                                           at::Tensor out);
std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center, at::Tensor out);
at::Tensor column_sums(const at::Tensor& x);
void add_into(at::Tensor& acc, const at::Tensor& x);
}  // namespace cpu

#ifdef FTLENS_WITH_CUDA
namespace cuda {
std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x,
                                                           const at::Tensor& shift,
                                                           at::Tensor out);
std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center, at::Tensor out);
}  // namespace cuda
#endif

// True when this build carries the CUDA kernels.
bool built_with_cuda();

// Throws a clear error when t is a CUDA tensor and this build has no CUDA kernels; `op`
// names the public entry point in the message.
void check_kernels_for(const at::Tensor& t, const char* op);

}  // namespace ftlens
