// Error check shared by the CUDA launchers.
#pragma once

#include <cuda_runtime.h>
#include <ATen/ATen.h>

namespace ftlens {
namespace cuda {

inline void check(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, "ftlens.", op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

}  // namespace cuda
}  // namespace ftlens
