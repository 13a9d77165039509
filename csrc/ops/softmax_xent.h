// Per-task softmax, cross-entropy and its gradient with respect to the logits, for many
// multinomial probes sharing one logits matrix (the probes of every task side by side).
#pragma once

#include <ATen/ATen.h>

namespace ftlens {

// logits: [L, m, C] float or double, the columns of task t at [offsets[t], offsets[t+1]);
// labels: [m, T] int64 class index within each task (-1: no label, the row is skipped);
// offsets: [T + 1] int64 on the logits' device.
// Overwrites `logits` with softmax - onehot (zero for skipped rows) and returns the
// cross-entropy of every row and task, [L, m, T] float64 (zero for skipped rows).
at::Tensor softmax_xent(at::Tensor logits, const at::Tensor& labels, const at::Tensor& offsets);

namespace cpu {
at::Tensor softmax_xent(at::Tensor logits, const at::Tensor& labels, const at::Tensor& offsets);
}
namespace cuda {
at::Tensor softmax_xent(at::Tensor logits, const at::Tensor& labels, const at::Tensor& offsets);
}

}  // namespace ftlens
