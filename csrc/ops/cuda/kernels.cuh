// Plain CUDA kernels over raw pointers for the row ops (no ATen here, so that
// `nvcc -c` can check this file on a machine without torch's CUDA headers).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace ftlens {
namespace cuda_kernels {

// rows: layers * m rows of d values; shift: layers rows of d values.
template <typename In, typename Out>
cudaError_t launch_center_rows(const In* x, const In* shift, Out* out, double* sq_norm,
                               double* inv_norm, int64_t layers, int64_t m, int64_t d,
                               cudaStream_t stream);

// Unit rows: each row's mean (when centering) and 1 / norm, then per row group (of
// `groups`) the column sums of the unit rows into partials [layers, groups, d].
template <typename T>
cudaError_t launch_unit_row_scales(const T* x, double* row_mean, double* scale, double* partials,
                                   int64_t layers, int64_t m, int64_t d, int64_t groups, bool center,
                                   cudaStream_t stream);

// Unit rows minus the layer's shift, written in Out, with ||c||^2, 1 / ||e|| and c . h
// (h and along may be null).
template <typename In, typename Out>
cudaError_t launch_center_unit_rows(const In* x, const double* row_mean, const double* scale,
                                    const double* shift, const double* h, Out* out, double* alpha,
                                    double* inv, double* along, int64_t layers, int64_t m, int64_t d,
                                    cudaStream_t stream);

// Per-task softmax - onehot written over the logits, cross-entropy per (layer, row, task).
template <typename T>
cudaError_t launch_softmax_xent(T* logits, const int64_t* labels, const int64_t* offsets, double* loss,
                                int64_t layers, int64_t m, int64_t c, int64_t tasks, cudaStream_t stream);

}  // namespace cuda_kernels
}  // namespace ftlens
