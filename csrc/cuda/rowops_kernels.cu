#include "rowops_kernels.cuh"

namespace ftlens {
namespace cuda_kernels {
namespace {

constexpr int kThreads = 256;

// Sum of `value` over the block; every thread gets the result.
__device__ double block_sum(double value, double* scratch) {
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

// One block per row: subtract the layer's shift, reduce centered and raw squared norms.
template <typename In, typename Out>
__global__ void center_rows_kernel(const In* __restrict__ x, const In* __restrict__ shift,
                                   Out* __restrict__ out, double* __restrict__ sq_norm,
                                   double* __restrict__ inv_norm, int64_t m, int64_t d) {
  __shared__ double scratch[32];
  const int64_t row = blockIdx.x;
  const In* xr = x + row * d;
  const In* sr = shift + (row / m) * d;
  Out* orow = out + row * d;
  double centered = 0.0, raw = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const In v = xr[j];
    const Out c = static_cast<Out>(v - sr[j]);
    orow[j] = c;
    centered += static_cast<double>(c) * c;
    raw += static_cast<double>(v) * v;
  }
  centered = block_sum(centered, scratch);
  raw = block_sum(raw, scratch);
  if (threadIdx.x == 0) {
    sq_norm[row] = centered;
    inv_norm[row] = raw > 0.0 ? rsqrt(raw) : 0.0;
  }
}

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

template <typename In, typename Out>
cudaError_t launch_center_rows(const In* x, const In* shift, Out* out, double* sq_norm,
                               double* inv_norm, int64_t layers, int64_t m, int64_t d,
                               cudaStream_t stream) {
  const int64_t rows = layers * m;
  if (rows == 0) return cudaSuccess;
  center_rows_kernel<In, Out><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      x, shift, out, sq_norm, inv_norm, m, d);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_normalize_rows(const T* x, double* out, int64_t* zero_rows, int64_t rows,
                                  int64_t d, bool center, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  normalize_rows_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      x, out, zero_rows, d, center);
  return cudaGetLastError();
}

#define FTLENS_CENTER_ROWS(In, Out)                                                     \
  template cudaError_t launch_center_rows<In, Out>(const In*, const In*, Out*, double*,  \
                                                   double*, int64_t, int64_t, int64_t,   \
                                                   cudaStream_t);
FTLENS_CENTER_ROWS(float, float)
FTLENS_CENTER_ROWS(double, float)
FTLENS_CENTER_ROWS(double, double)
FTLENS_CENTER_ROWS(float, double)
#undef FTLENS_CENTER_ROWS

template cudaError_t launch_normalize_rows<float>(const float*, double*, int64_t*, int64_t,
                                                  int64_t, bool, cudaStream_t);
template cudaError_t launch_normalize_rows<double>(const double*, double*, int64_t*, int64_t,
                                                   int64_t, bool, cudaStream_t);

}  // namespace cuda_kernels
}  // namespace ftlens
