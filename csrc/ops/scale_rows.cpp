#include "ops/scale_rows.h"

#include <ATen/record_function.h>

namespace ftlens {

at::Tensor scale_rows(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale, at::Tensor out) {
  RECORD_FUNCTION("ftlens::scale_rows", {});
  TORCH_CHECK_VALUE(x.dim() == 3, "scale_rows: expected rows as [layers, rows, dim], got ", x.dim(), "-D");
  TORCH_CHECK_VALUE(x.scalar_type() == at::kHalf || x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "scale_rows: rows must be float16, float32 or float64, got ", x.scalar_type());
  TORCH_CHECK_VALUE(shift.dim() == 2 && shift.size(0) == x.size(0) && shift.size(1) == x.size(2) &&
                  scale.sizes() == shift.sizes(),
              "scale_rows: shift and scale must be [layers, dim]");
  const auto dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  if (!x.is_cpu()) {
    return (x.to(dtype) - shift.to(x.device(), dtype).unsqueeze(1)).mul_(scale.to(x.device(), dtype).unsqueeze(1));
  }
  if (out.defined()) {
    TORCH_CHECK_VALUE(out.sizes() == x.sizes() && out.scalar_type() == dtype && out.is_contiguous() && out.is_cpu(),
                "scale_rows: out must be a contiguous CPU tensor of the rows' shape in ", dtype);
  } else {
    out = at::empty(x.sizes(), x.options().dtype(dtype));
  }
  return cpu::scale_rows(x.contiguous(), shift.to(dtype).contiguous(), scale.to(dtype).contiguous(), out);
}

}  // namespace ftlens
