// Plain CUDA kernel of normalize_rows (no ATen: `nvcc -c` checks it without torch's CUDA headers).
#include "block_sum.cuh"
#include "kernels.cuh"

namespace ftlens {
namespace cuda_kernels {
namespace {

// One block per row: optional row centering, then scaling to unit norm.
template <typename T>
__global__ void normalize_rows_kernel(const T* __restrict__ x, double* __restrict__ out,
                                      int64_t* __restrict__ zero_rows, int64_t d,
                                      bool center) {
  __shared__ double scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * d;
  double* orow = out + row * d;
  double mean = 0.0;
  if (center) {
    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) sum += xr[j];
    mean = block_sum(sum, scratch) / static_cast<double>(d);
  }
  double norm = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const double c = xr[j] - mean;
    norm += c * c;
  }
  norm = sqrt(block_sum(norm, scratch));
  const bool zero = !(norm > 0.0);
  const double scale = zero ? 0.0 : 1.0 / norm;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    orow[j] = (xr[j] - mean) * scale;
  }
  if (threadIdx.x == 0) zero_rows[row] = zero ? 1 : 0;
}

}  // namespace

template <typename T>
cudaError_t launch_normalize_rows(const T* x, double* out, int64_t* zero_rows, int64_t rows,
                                  int64_t d, bool center, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  normalize_rows_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      x, out, zero_rows, d, center);
  return cudaGetLastError();
}

template cudaError_t launch_normalize_rows<float>(const float*, double*, int64_t*, int64_t,
                                                  int64_t, bool, cudaStream_t);
template cudaError_t launch_normalize_rows<double>(const double*, double*, int64_t*, int64_t,
                                                   int64_t, bool, cudaStream_t);

}  // namespace cuda_kernels
}  // namespace ftlens
