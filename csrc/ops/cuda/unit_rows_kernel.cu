// Plain CUDA kernels of unit_row_scales and center_unit_rows (no ATen: `nvcc -c` checks
// them without torch's CUDA headers).
#include "block_sum.cuh"
#include "kernels.cuh"

namespace ftlens {
namespace cuda_kernels {
namespace {

// One block per row: the row's own mean (when centering) and 1 / its norm about it.
template <typename T>
__global__ void row_scales_kernel(const T* __restrict__ x, double* __restrict__ row_mean,
                                  double* __restrict__ scale, int64_t d, bool center) {
  __shared__ double scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * d;
  double r = 0.0;
  if (center) {
    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) sum += xr[j];
    r = block_sum(sum, scratch) / static_cast<double>(d);
  }
  double norm = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const double c = xr[j] - r;
    norm += c * c;
  }
  norm = sqrt(block_sum(norm, scratch));
  if (threadIdx.x == 0) {
    row_mean[row] = r;
    scale[row] = norm > 0.0 ? 1.0 / norm : 0.0;
  }
}

// Thread per column and row group (blockIdx.y) of a layer (blockIdx.z): the group's sum of
// unit rows; adjacent threads read adjacent columns.
template <typename T>
__global__ void unit_column_sums_kernel(const T* __restrict__ x, const double* __restrict__ row_mean,
                                        const double* __restrict__ scale, double* __restrict__ partials,
                                        int64_t m, int64_t d, int64_t groups) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= d) return;
  const int64_t layer = blockIdx.z, group = blockIdx.y;
  const int64_t step = (m + groups - 1) / groups;
  const int64_t first = group * step, last = first + step < m ? first + step : m;
  double acc = 0.0;
  for (int64_t i = first; i < last; ++i) {
    const int64_t row = layer * m + i;
    acc += (static_cast<double>(x[row * d + j]) - row_mean[row]) * scale[row];
  }
  partials[(layer * groups + group) * d + j] = acc;
}

// One block per row: c = e - shift in float64, written in Out, with its norms and c . h.
template <typename In, typename Out>
__global__ void center_unit_rows_kernel(const In* __restrict__ x, const double* __restrict__ row_mean,
                                        const double* __restrict__ scale, const double* __restrict__ shift,
                                        const double* __restrict__ h, Out* __restrict__ out,
                                        double* __restrict__ alpha, double* __restrict__ inv,
                                        double* __restrict__ along, int64_t m, int64_t d) {
  __shared__ double scratch[32];
  const int64_t row = blockIdx.x, layer = row / m;
  const In* xr = x + row * d;
  const double* sh = shift + layer * d;
  Out* orow = out + row * d;
  const double r = row_mean[row], s = scale[row];
  double sq = 0.0, unit = 0.0, dot = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const double e = (static_cast<double>(xr[j]) - r) * s;
    const double c = e - sh[j];
    orow[j] = static_cast<Out>(c);
    sq += c * c;
    unit += e * e;
    if (h != nullptr) dot += c * h[layer * d + j];
  }
  sq = block_sum(sq, scratch);
  unit = block_sum(unit, scratch);
  if (h != nullptr) dot = block_sum(dot, scratch);
  if (threadIdx.x == 0) {
    alpha[row] = sq;
    inv[row] = unit > 0.0 ? rsqrt(unit) : 0.0;
    if (h != nullptr) along[row] = dot;
  }
}

}  // namespace

template <typename T>
cudaError_t launch_unit_row_scales(const T* x, double* row_mean, double* scale, double* partials,
                                   int64_t layers, int64_t m, int64_t d, int64_t groups, bool center,
                                   cudaStream_t stream) {
  if (layers * m == 0) return cudaSuccess;
  row_scales_kernel<T><<<static_cast<unsigned>(layers * m), kThreads, 0, stream>>>(x, row_mean, scale, d,
                                                                                    center);
  const dim3 grid(static_cast<unsigned>((d + kThreads - 1) / kThreads), static_cast<unsigned>(groups),
                  static_cast<unsigned>(layers));
  unit_column_sums_kernel<T><<<grid, kThreads, 0, stream>>>(x, row_mean, scale, partials, m, d, groups);
  return cudaGetLastError();
}

template <typename In, typename Out>
cudaError_t launch_center_unit_rows(const In* x, const double* row_mean, const double* scale,
                                    const double* shift, const double* h, Out* out, double* alpha,
                                    double* inv, double* along, int64_t layers, int64_t m, int64_t d,
                                    cudaStream_t stream) {
  if (layers * m == 0) return cudaSuccess;
  center_unit_rows_kernel<In, Out><<<static_cast<unsigned>(layers * m), kThreads, 0, stream>>>(
      x, row_mean, scale, shift, h, out, alpha, inv, along, m, d);
  return cudaGetLastError();
}

template cudaError_t launch_unit_row_scales<float>(const float*, double*, double*, double*, int64_t, int64_t,
                                                   int64_t, int64_t, bool, cudaStream_t);
template cudaError_t launch_unit_row_scales<double>(const double*, double*, double*, double*, int64_t,
                                                    int64_t, int64_t, int64_t, bool, cudaStream_t);

#define FTLENS_CENTER_UNIT_ROWS(In, Out)                                                                  \
  template cudaError_t launch_center_unit_rows<In, Out>(const In*, const double*, const double*,           \
                                                        const double*, const double*, Out*, double*,       \
                                                        double*, double*, int64_t, int64_t, int64_t,       \
                                                        cudaStream_t);
FTLENS_CENTER_UNIT_ROWS(float, float)
FTLENS_CENTER_UNIT_ROWS(float, double)
FTLENS_CENTER_UNIT_ROWS(double, float)
FTLENS_CENTER_UNIT_ROWS(double, double)
#undef FTLENS_CENTER_UNIT_ROWS

}  // namespace cuda_kernels
}  // namespace ftlens
