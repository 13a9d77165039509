#include "ops/unit_rows.h"

#include <ATen/record_function.h>

#include "ops/dispatch.h"

namespace ftlens {

UnitScales unit_row_scales(const at::Tensor& x, bool center) {
  RECORD_FUNCTION("ftlens::unit_row_scales", {});
  check_rows(x, "unit_row_scales");
  if (x.is_cuda()) {
#ifdef FTLENS_WITH_CUDA
    return cuda::unit_row_scales(x.contiguous(), center);
#else
    check_kernels_for(x, "unit_row_scales");
#endif
  }
  return cpu::unit_row_scales(x.contiguous(), center);
}

CenteredUnitRows center_unit_rows(const at::Tensor& x, const at::Tensor& row_mean, const at::Tensor& scale,
                                  const at::Tensor& shift, const at::Tensor& h, at::Tensor out) {
  RECORD_FUNCTION("ftlens::center_unit_rows", {});
  check_rows(x, "center_unit_rows");
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  auto check_f64 = [&](const at::Tensor& t, at::IntArrayRef sizes, const char* name) {
    TORCH_CHECK_VALUE(t.sizes() == sizes && t.scalar_type() == at::kDouble && t.device() == x.device(),
                "center_unit_rows: ", name, " must be float64 of shape ", sizes, " on the rows' device");
  };
  check_f64(row_mean, {layers, m}, "row_mean");
  check_f64(scale, {layers, m}, "scale");
  check_f64(shift, {layers, d}, "shift");
  if (h.defined()) check_f64(h, {layers, d}, "h");
  TORCH_CHECK_VALUE(out.defined() && (out.scalar_type() == at::kFloat || out.scalar_type() == at::kDouble),
              "center_unit_rows: out must be a float32 or float64 buffer");
  const at::Tensor target = output_for(x, out.scalar_type(), out, "center_unit_rows");
  const at::Tensor h_in = h.defined() ? h.contiguous() : h;
  if (x.is_cuda()) {
#ifdef FTLENS_WITH_CUDA
    return cuda::center_unit_rows(x.contiguous(), row_mean.contiguous(), scale.contiguous(), shift.contiguous(),
                                  h_in, target);
#else
    check_kernels_for(x, "center_unit_rows");
#endif
  }
  return cpu::center_unit_rows(x.contiguous(), row_mean.contiguous(), scale.contiguous(), shift.contiguous(), h_in,
                               target);
}

}  // namespace ftlens
