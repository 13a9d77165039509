// What every row op shares: the build's backends, input checks and the CPU/CUDA choice.
#pragma once

#include <ATen/ATen.h>

namespace ftlens {

// True when this build carries the CUDA kernels.
bool built_with_cuda();

// Throws a clear error when t is a CUDA tensor and this build has no CUDA kernels; `op`
// names the public entry point in the message.
void check_kernels_for(const at::Tensor& t, const char* op);

// Checks that x is [layers, rows, dim] float32 or float64.
void check_rows(const at::Tensor& x, const char* op);

// The given output buffer, checked (x's shape and device, contiguous, `dtype`), or a fresh one.
at::Tensor output_for(const at::Tensor& x, at::ScalarType dtype, const at::Tensor& out, const char* op);

// The CPU/CUDA choice in each op reads:
//   if (x.is_cuda()) {
//   #ifdef FTLENS_WITH_CUDA
//     return cuda::op(...);
//   #else
//     check_kernels_for(x, "op");  // stops with the clear message above
//   #endif
//   }
//   return cpu::op(...);

}  // namespace ftlens
