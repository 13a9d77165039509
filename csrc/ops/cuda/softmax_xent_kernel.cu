// Plain CUDA kernel of softmax_xent (no ATen: `nvcc -c` checks it without torch's CUDA headers).
#include "block_sum.cuh"  // kThreads
#include "kernels.cuh"

namespace ftlens {
namespace cuda_kernels {
namespace {

// One thread per (layer, row, task): a task has few columns, so a serial loop over them
// keeps every thread busy without block reductions.
template <typename T>
__global__ void softmax_xent_kernel(T* __restrict__ z, const int64_t* __restrict__ labels,
                                    const int64_t* __restrict__ offsets, double* __restrict__ loss,
                                    int64_t layers, int64_t m, int64_t c, int64_t tasks) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= layers * m * tasks) return;
  const int64_t t = index % tasks, row = index / tasks, r = row % m;
  T* zt = z + row * c + offsets[t];
  const int64_t width = offsets[t + 1] - offsets[t], y = labels[r * tasks + t];
  if (y < 0) {
    for (int64_t j = 0; j < width; ++j) zt[j] = T(0);
    loss[index] = 0.0;
    return;
  }
  double peak = static_cast<double>(zt[0]);
  for (int64_t j = 1; j < width; ++j) peak = fmax(peak, static_cast<double>(zt[j]));
  double total = 0.0;
  for (int64_t j = 0; j < width; ++j) total += exp(static_cast<double>(zt[j]) - peak);
  const double log_total = log(total) + peak;
  loss[index] = log_total - static_cast<double>(zt[y]);
  for (int64_t j = 0; j < width; ++j) {
    zt[j] = static_cast<T>(exp(static_cast<double>(zt[j]) - log_total) - (j == y ? 1.0 : 0.0));
  }
}

}  // namespace

template <typename T>
cudaError_t launch_softmax_xent(T* logits, const int64_t* labels, const int64_t* offsets, double* loss,
                                int64_t layers, int64_t m, int64_t c, int64_t tasks, cudaStream_t stream) {
  const int64_t threads = layers * m * tasks;
  if (threads == 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  softmax_xent_kernel<T><<<blocks, kThreads, 0, stream>>>(logits, labels, offsets, loss, layers, m, c, tasks);
  return cudaGetLastError();
}

template cudaError_t launch_softmax_xent<float>(float*, const int64_t*, const int64_t*, double*, int64_t,
                                                int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t launch_softmax_xent<double>(double*, const int64_t*, const int64_t*, double*, int64_t,
                                                 int64_t, int64_t, int64_t, cudaStream_t);

}  // namespace cuda_kernels
}  // namespace ftlens
