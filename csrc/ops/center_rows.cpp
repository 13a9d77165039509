#include "ops/center_rows.h"

#include <ATen/record_function.h>

#include "ops/dispatch.h"

namespace ftlens {

std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x, const at::Tensor& shift,
                                                           at::ScalarType out_dtype, const at::Tensor& out) {
  RECORD_FUNCTION("ftlens::center_rows", {});  // visible to torch.profiler
  check_rows(x, "center_rows");
  TORCH_CHECK_VALUE(shift.dim() == 2 && shift.size(0) == x.size(0) && shift.size(1) == x.size(2),
              "center_rows: shift must be [layers, dim]");
  TORCH_CHECK_VALUE(shift.scalar_type() == x.scalar_type() && shift.device() == x.device(),
              "center_rows: shift must match the rows' dtype and device");
  TORCH_CHECK_VALUE(out_dtype == at::kFloat || out_dtype == at::kDouble, "center_rows: out_dtype must be float32 or float64");
  const at::Tensor target = output_for(x, out_dtype, out, "center_rows");
  if (x.is_cuda()) {
#ifdef FTLENS_WITH_CUDA
    return cuda::center_rows(x.contiguous(), shift.contiguous(), target);
#else
    check_kernels_for(x, "center_rows");
#endif
  }
  return cpu::center_rows(x.contiguous(), shift.contiguous(), target);
}

}  // namespace ftlens
