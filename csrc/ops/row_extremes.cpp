#include "ops/row_extremes.h"

#include <ATen/record_function.h>

#include "ops/dispatch.h"

namespace ftlens {

std::tuple<at::Tensor, at::Tensor> row_extremes(const at::Tensor& x) {
  RECORD_FUNCTION("ftlens::row_extremes", {});
  check_rows(x, "row_extremes");
  if (!x.is_cpu()) return at::aminmax(x, 2);
  return cpu::row_extremes(x.contiguous());
}

}  // namespace ftlens
