#include "ops/weighted_sums.h"

#include <ATen/record_function.h>

namespace ftlens {

at::Tensor weighted_sums(const at::Tensor& rows, const at::Tensor& weights) {
  RECORD_FUNCTION("ftlens::weighted_sums", {});
  TORCH_CHECK_VALUE(rows.dim() == 2 && (rows.scalar_type() == at::kFloat || rows.scalar_type() == at::kDouble),
              "weighted_sums: rows must be [m, d] float32 or float64");
  TORCH_CHECK_VALUE(weights.dim() == 2 && weights.size(1) == rows.size(0) && weights.scalar_type() == at::kDouble &&
                  weights.device() == rows.device(),
              "weighted_sums: weights must be [k, m] float64 on the rows' device");
  if (!rows.is_cpu()) return at::mm(weights.to(rows.scalar_type()), rows).t().to(at::kDouble);
  return cpu::weighted_sums(rows.contiguous(), weights.contiguous());
}

}  // namespace ftlens
