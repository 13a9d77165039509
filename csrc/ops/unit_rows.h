// The unit rows of a cosine or correlation view, in two fused sweeps that never write them
// in float64: the first finds each row's scale and the rows' column sums, the second
// writes the rows centered about the chunk's mean, in the GEMM's dtype.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace ftlens {

using UnitScales = std::tuple<at::Tensor, at::Tensor, at::Tensor>;                    // see unit_row_scales
using CenteredUnitRows = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;  // see center_unit_rows

// Unit rows e_i = (x_i - r_i) / ||x_i - r_i|| of x [L, m, d], with r_i the row's own mean
// over features when `center` (correlation) and 0 otherwise (cosine). Returns
// (r [L, m], 1 / ||x_i - r_i|| [L, m] (0 for a zero-norm row), sum_i e_i [L, d]), all
// float64; a row with a NaN or Inf gives NaN sums. The column sums are added in a fixed
// order, so they do not depend on the number of threads.
UnitScales unit_row_scales(const at::Tensor& x, bool center);

// c_i = e_i - shift, computed in float64 from x, r and the scales above, written to `out`
// (x's shape, float32 or float64). shift: [L, d] float64. h: [L, d] float64 or undefined.
// Returns (out, ||c_i||^2 [L, m], 1 / ||e_i|| [L, m] (0 for zero rows), c_i . h [L, m]
// (undefined without h)), the norms and products from the float64 c_i.
CenteredUnitRows center_unit_rows(const at::Tensor& x, const at::Tensor& row_mean, const at::Tensor& scale,
                                  const at::Tensor& shift, const at::Tensor& h, at::Tensor out);

namespace cpu {
UnitScales unit_row_scales(const at::Tensor& x, bool center);
CenteredUnitRows center_unit_rows(const at::Tensor& x, const at::Tensor& row_mean, const at::Tensor& scale,
                                  const at::Tensor& shift, const at::Tensor& h, at::Tensor out);
}  // namespace cpu
#ifdef FTLENS_WITH_CUDA
namespace cuda {
UnitScales unit_row_scales(const at::Tensor& x, bool center);
CenteredUnitRows center_unit_rows(const at::Tensor& x, const at::Tensor& row_mean, const at::Tensor& scale,
                                  const at::Tensor& shift, const at::Tensor& h, at::Tensor out);
}  // namespace cuda
#endif

}  // namespace ftlens
