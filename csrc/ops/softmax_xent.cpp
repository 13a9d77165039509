#include "ops/softmax_xent.h"

#include <ATen/record_function.h>

#include "ops/dispatch.h"

namespace ftlens {

at::Tensor softmax_xent(at::Tensor logits, const at::Tensor& labels, const at::Tensor& offsets) {
  RECORD_FUNCTION("ftlens::softmax_xent", {});
  check_rows(logits, "softmax_xent");
  TORCH_CHECK_VALUE(logits.is_contiguous(), "softmax_xent: logits must be contiguous (they are overwritten)");
  TORCH_CHECK_VALUE(labels.dim() == 2 && labels.size(0) == logits.size(1) && labels.scalar_type() == at::kLong,
              "softmax_xent: labels must be int64 [rows, tasks] with the logits' rows");
  TORCH_CHECK_VALUE(offsets.dim() == 1 && offsets.size(0) == labels.size(1) + 1 && offsets.scalar_type() == at::kLong,
              "softmax_xent: offsets must be int64 [tasks + 1]");
  TORCH_CHECK_VALUE(labels.device() == logits.device() && offsets.device() == logits.device(),
              "softmax_xent: labels and offsets must be on the logits' device");
  const at::Tensor widths = offsets.narrow(0, 1, labels.size(1)) - offsets.narrow(0, 0, labels.size(1));
  TORCH_CHECK_VALUE((labels < widths.unsqueeze(0)).all().item<bool>() && (labels >= -1).all().item<bool>(),
              "softmax_xent: every label must be -1 (none) or a class index below its task's width");
  TORCH_CHECK_VALUE(offsets[-1].item<int64_t>() == logits.size(2), "softmax_xent: offsets must end at the logits' width");
  if (logits.is_cuda()) {
#ifdef FTLENS_WITH_CUDA
    return cuda::softmax_xent(logits, labels.contiguous(), offsets.contiguous());
#else
    check_kernels_for(logits, "softmax_xent");
#endif
  }
  return cpu::softmax_xent(logits, labels.contiguous(), offsets.contiguous());
}

}  // namespace ftlens
