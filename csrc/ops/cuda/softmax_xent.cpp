// Thin ATen launcher of the CUDA softmax_xent kernel.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "ops/cuda/kernels.cuh"
#include "ops/cuda/launch.h"
#include "ops/softmax_xent.h"

namespace ftlens {
namespace cuda {

at::Tensor softmax_xent(at::Tensor logits, const at::Tensor& labels, const at::Tensor& offsets) {
  const c10::cuda::CUDAGuard guard(logits.device());
  const int64_t layers = logits.size(0), m = logits.size(1), c = logits.size(2), tasks = labels.size(1);
  auto loss = at::empty({layers, m, tasks}, logits.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "softmax_xent_cuda", [&] {
    check(cuda_kernels::launch_softmax_xent<scalar_t>(logits.data_ptr<scalar_t>(), labels.data_ptr<int64_t>(),
                                                      offsets.data_ptr<int64_t>(), loss.data_ptr<double>(),
                                                      layers, m, c, tasks, at::cuda::getCurrentCUDAStream()),
          "softmax_xent");
  });
  return loss;
}

}  // namespace cuda
}  // namespace ftlens
