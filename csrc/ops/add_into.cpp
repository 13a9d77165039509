#include "ops/add_into.h"

#include <ATen/record_function.h>

namespace ftlens {

void add_into(at::Tensor& acc, const at::Tensor& x) {
  RECORD_FUNCTION("ftlens::add_into", {});
  TORCH_CHECK_VALUE(acc.scalar_type() == at::kDouble && acc.is_contiguous(), "add_into: the accumulator must be contiguous float64");
  TORCH_CHECK_VALUE(acc.sizes() == x.sizes(), "add_into: shapes differ");
  if (!x.is_cpu() || x.scalar_type() == at::kDouble) {
    acc.add_(x);
    return;
  }
  cpu::add_into(acc, x.contiguous());
}

}  // namespace ftlens
