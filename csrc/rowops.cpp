#include "rowops.h"

#include <ATen/record_function.h>

namespace ftlens {
namespace {

void check_rows(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.dim() == 3, op, ": expected rows as [layers, rows, dim], got ", x.dim(), "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": rows must be float32 or float64, got ", x.scalar_type());
}

[[noreturn]] void no_cuda(const char* op) {
  throw std::invalid_argument(
      std::string("ftlens.") + op +
      ": a CUDA tensor reached a CUDA-only path, but this ftlens build has no CUDA kernels "
      "(see ftlens.build_info()). Move the tensors to the CPU with .cpu(), or reinstall "
      "ftlens with FTLENS_CUDA=1 on a machine with nvcc and a CUDA build of torch.");
}

}  // namespace

bool built_with_cuda() {
#ifdef FTLENS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

void check_kernels_for(const at::Tensor& t, const char* op) {
  if (t.is_cuda() && !built_with_cuda()) no_cuda(op);
}

namespace {
// The given output buffer, checked, or a fresh one.
at::Tensor output_for(const at::Tensor& x, at::ScalarType dtype, const at::Tensor& out, const char* op) {
  if (!out.defined()) return at::empty(x.sizes(), x.options().dtype(dtype));
  TORCH_CHECK(out.sizes() == x.sizes() && out.scalar_type() == dtype && out.device() == x.device() &&
                  out.is_contiguous(),
              op, ": out must be a contiguous tensor of the rows' shape and device in ", dtype);
  return out;
}
}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> center_rows(const at::Tensor& x,
                                                           const at::Tensor& shift,
                                                           at::ScalarType out_dtype,
                                                           const at::Tensor& out) {
  RECORD_FUNCTION("ftlens::center_rows", {});  // visible to torch.profiler
  check_rows(x, "center_rows");
  TORCH_CHECK(shift.dim() == 2 && shift.size(0) == x.size(0) && shift.size(1) == x.size(2),
              "center_rows: shift must be [layers, dim]");
  TORCH_CHECK(shift.scalar_type() == x.scalar_type() && shift.device() == x.device(),
              "center_rows: shift must match the rows' dtype and device");
  TORCH_CHECK(out_dtype == at::kFloat || out_dtype == at::kDouble,
              "center_rows: out_dtype must be float32 or float64");
  if (x.is_cuda()) {
#ifdef FTLENS_WITH_CUDA
    return cuda::center_rows(x.contiguous(), shift.contiguous(),
                             output_for(x, out_dtype, out, "center_rows"));
#else
    no_cuda("center_rows");
#endif
  }
  return cpu::center_rows(x.contiguous(), shift.contiguous(), output_for(x, out_dtype, out, "center_rows"));
}

at::Tensor column_sums(const at::Tensor& x) {
  RECORD_FUNCTION("ftlens::column_sums", {});
  check_rows(x, "column_sums");
  // On the GPU the cast is cheap next to the reduction: no dedicated kernel needed.
  if (!x.is_cpu()) return x.sum(1, false, at::kDouble);
  return cpu::column_sums(x.contiguous());
}

void add_into(at::Tensor& acc, const at::Tensor& x) {
  RECORD_FUNCTION("ftlens::add_into", {});
  TORCH_CHECK(acc.scalar_type() == at::kDouble && acc.is_contiguous(),
              "add_into: the accumulator must be contiguous float64");
  TORCH_CHECK(acc.sizes() == x.sizes(), "add_into: shapes differ");
  if (!x.is_cpu() || x.scalar_type() == at::kDouble) {
    acc.add_(x);
    return;
  }
  cpu::add_into(acc, x.contiguous());
}

std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x, bool center,
                                                  const at::Tensor& out) {
  RECORD_FUNCTION("ftlens::normalize_rows", {});
  check_rows(x, "normalize_rows");
  if (x.is_cuda()) {
#ifdef FTLENS_WITH_CUDA
    return cuda::normalize_rows(x.contiguous(), center, output_for(x, at::kDouble, out, "normalize_rows"));
#else
    no_cuda("normalize_rows");
#endif
  }
  return cpu::normalize_rows(x.contiguous(), center, output_for(x, at::kDouble, out, "normalize_rows"));
}

}  // namespace ftlens
