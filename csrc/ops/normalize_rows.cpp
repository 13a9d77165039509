#include "ops/normalize_rows.h"

#include <ATen/record_function.h>

#include "ops/dispatch.h"

namespace ftlens {

std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center, const at::Tensor& out) {
  RECORD_FUNCTION("ftlens::normalize_rows", {});
  check_rows(x, "normalize_rows");
  const at::Tensor target = output_for(x, at::kDouble, out, "normalize_rows");
  if (x.is_cuda()) {
#ifdef FTLENS_WITH_CUDA
    return cuda::normalize_rows(x.contiguous(), center, target);
#else
    check_kernels_for(x, "normalize_rows");
#endif
  }
  return cpu::normalize_rows(x.contiguous(), center, target);
}

}  // namespace ftlens
