// Plain CUDA kernel of center_rows (no ATen: `nvcc -c` checks it without torch's CUDA headers).
#include "block_sum.cuh"
#include "kernels.cuh"

namespace ftlens {
namespace cuda_kernels {
namespace {

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

#define FTLENS_CENTER_ROWS(In, Out)                                                     \
  template cudaError_t launch_center_rows<In, Out>(const In*, const In*, Out*, double*,  \
                                                   double*, int64_t, int64_t, int64_t,   \
                                                   cudaStream_t);
FTLENS_CENTER_ROWS(float, float)
FTLENS_CENTER_ROWS(double, float)
FTLENS_CENTER_ROWS(double, double)
FTLENS_CENTER_ROWS(float, double)
#undef FTLENS_CENTER_ROWS

}  // namespace cuda_kernels
}  // namespace ftlens
