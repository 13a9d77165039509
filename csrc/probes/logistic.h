// Batched multinomial logistic probes: every layer's probes for every task in one
// weight tensor W [L, d, C] (task t owns columns [offsets[t], offsets[t+1])), evaluated
// on standardized rows (x - shift) * scale.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "ops/scratch.h"

namespace ftlens {

// One chunk's share of the summed cross-entropy and its gradient: one batched GEMM for
// the logits of every probe, the fused per-task softmax, one batched GEMM for the
// gradient. xs: [L, m, d] float32 (float32 GEMMs) or float64; shift, scale: [L, d];
// w: [L, d, C], b: [L, C]; labels: [m, T] (-1: no label).
// Returns (loss [L, T], grad_w [L, d, C], grad_b [L, C]), sums over the rows, float64.
// `scratch` (optional) keeps the [L, m, d] and [L, m, C] working tensors between calls: a
// pass over a store then writes them into the same memory chunk after chunk instead of
// faulting in fresh pages (a third of an edge pass's time without it).
std::tuple<at::Tensor, at::Tensor, at::Tensor> logistic_loss_grad(const at::Tensor& xs, const at::Tensor& shift,
                                                                  const at::Tensor& scale, const at::Tensor& w,
                                                                  const at::Tensor& b, const at::Tensor& labels,
                                                                  const at::Tensor& offsets,
                                                                  Scratch* scratch = nullptr);

// The predicted class of every probe: [L, m, T] int64 (argmax within each task's columns).
at::Tensor linear_predict(const at::Tensor& xs, const at::Tensor& shift, const at::Tensor& scale,
                          const at::Tensor& w, const at::Tensor& b, const at::Tensor& offsets,
                          Scratch* scratch = nullptr);

}  // namespace ftlens
