#include "ops/column_sums.h"

#include <ATen/record_function.h>

#include "ops/dispatch.h"

namespace ftlens {

std::tuple<at::Tensor, at::Tensor> column_sums(const at::Tensor& x) {
  RECORD_FUNCTION("ftlens::column_sums", {});
  check_rows(x, "column_sums");
  if (!x.is_cpu()) return {x.sum(1, false, at::kDouble), x.abs().amax({1, 2}).to(at::kDouble)};
  return cpu::column_sums(x.contiguous());
}

}  // namespace ftlens
