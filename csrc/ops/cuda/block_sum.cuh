// Block-wide float64 sum for the one-block-per-row kernels.
#pragma once

#include <cuda_runtime.h>

namespace ftlens {
namespace cuda_kernels {

constexpr int kThreads = 256;

// Sum of `value` over the block; every thread gets the result.
__device__ inline double block_sum(double value, double* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) {
    value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < (blockDim.x + 31) / 32 ? scratch[lane] : 0.0;
    for (int offset = 16; offset > 0; offset /= 2) {
      value += __shfl_down_sync(0xffffffffu, value, offset);
    }
    if (lane == 0) scratch[0] = value;
  }
  __syncthreads();
  const double total = scratch[0];
  __syncthreads();
  return total;
}

}  // namespace cuda_kernels
}  // namespace ftlens
