#include "ops/dispatch.h"

#include <c10/util/Exception.h>
#include <string>

namespace ftlens {

bool built_with_cuda() {
#ifdef FTLENS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

void check_kernels_for(const at::Tensor& t, const char* op) {
  if (!t.is_cuda() || built_with_cuda()) return;
  C10_THROW_ERROR(ValueError, 
      std::string("ftlens.") + op +
      ": a CUDA tensor reached a CUDA-only path, but this ftlens build has no CUDA kernels "
      "(see ftlens.build_info()). Move the tensors to the CPU with .cpu(), or reinstall "
      "ftlens with FTLENS_CUDA=1 on a machine with nvcc and a CUDA build of torch.");
}

void check_rows(const at::Tensor& x, const char* op) {
  TORCH_CHECK_VALUE(x.dim() == 3, op, ": expected rows as [layers, rows, dim], got ", x.dim(), "-D");
  TORCH_CHECK_VALUE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": rows must be float32 or float64, got ", x.scalar_type());
}

at::Tensor output_for(const at::Tensor& x, at::ScalarType dtype, const at::Tensor& out, const char* op) {
  if (!out.defined()) return at::empty(x.sizes(), x.options().dtype(dtype));
  TORCH_CHECK_VALUE(out.sizes() == x.sizes() && out.scalar_type() == dtype && out.device() == x.device() &&
                  out.is_contiguous(),
              op, ": out must be a contiguous tensor of the rows' shape and device in ", dtype);
  return out;
}

}  // namespace ftlens
