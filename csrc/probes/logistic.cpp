#include "probes/logistic.h"

#include <ATen/record_function.h>

#include "ops/dispatch.h"
#include "ops/scale_rows.h"
#include "ops/softmax_xent.h"

namespace ftlens {

namespace {

void check_probe(const at::Tensor& xs, const at::Tensor& shift, const at::Tensor& scale, const at::Tensor& w,
                 const at::Tensor& b, const at::Tensor& offsets, const char* op) {
  TORCH_CHECK_VALUE(xs.dim() == 3, op, ": expected rows as [layers, rows, dim]");
  const int64_t layers = xs.size(0), d = xs.size(2);
  TORCH_CHECK_VALUE(shift.sizes() == at::IntArrayRef({layers, d}) && scale.sizes() == shift.sizes(), op,
              ": shift and scale must be [layers, dim] = [", layers, ", ", d, "]");
  TORCH_CHECK_VALUE(w.dim() == 3 && w.size(0) == layers && w.size(1) == d, op, ": w must be [layers, dim, columns]");
  TORCH_CHECK_VALUE(b.dim() == 2 && b.size(0) == layers && b.size(1) == w.size(2), op, ": b must be [layers, columns]");
  TORCH_CHECK_VALUE(offsets.dim() == 1 && offsets.size(0) >= 2, op, ": offsets must be [tasks + 1]");
}

// (x - shift) * scale, then the logits of every probe: [L, m, C] in the rows' dtype, both in
// scratch buffers (valid until the next call with the same scratch).
std::tuple<at::Tensor, at::Tensor> standardized_logits(const at::Tensor& xs, const at::Tensor& shift,
                                                       const at::Tensor& scale, const at::Tensor& w,
                                                       const at::Tensor& b, Scratch& scratch) {
  const auto dtype = xs.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor z = xs.is_cpu() ? scale_rows(xs, shift, scale, scratch.get("rows", xs.sizes(), dtype, xs.device()))
                                   : scale_rows(xs, shift, scale);
  at::Tensor logits = scratch.get("logits", {xs.size(0), xs.size(1), w.size(2)}, dtype, xs.device());
  logits.copy_(b.to(dtype).unsqueeze(1).expand_as(logits));
  logits.baddbmm_(z, w.to(dtype));
  return {z, logits};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> logistic_loss_grad(const at::Tensor& xs, const at::Tensor& shift,
                                                                  const at::Tensor& scale, const at::Tensor& w,
                                                                  const at::Tensor& b, const at::Tensor& labels,
                                                                  const at::Tensor& offsets, Scratch* scratch) {
  RECORD_FUNCTION("ftlens::logistic_loss_grad", {});
  check_probe(xs, shift, scale, w, b, offsets, "logistic_loss_grad");
  Scratch local;
  auto [z, logits] = standardized_logits(xs, shift, scale, w, b, scratch ? *scratch : local);
  const at::Tensor loss = softmax_xent(logits, labels.to(xs.device()), offsets.to(xs.device()));  // logits -> dL/dlogits
  const at::Tensor grad_w = at::bmm(z.transpose(1, 2), logits).to(at::kDouble);
  const at::Tensor grad_b = logits.sum(1).to(at::kDouble);  // a chunk's sum in its dtype; chunks add in float64
  return {loss.sum(1), grad_w, grad_b};
}

at::Tensor linear_predict(const at::Tensor& xs, const at::Tensor& shift, const at::Tensor& scale,
                          const at::Tensor& w, const at::Tensor& b, const at::Tensor& offsets,
                          Scratch* scratch) {
  RECORD_FUNCTION("ftlens::linear_predict", {});
  check_probe(xs, shift, scale, w, b, offsets, "linear_predict");
  Scratch local;
  const at::Tensor logits = std::get<1>(standardized_logits(xs, shift, scale, w, b, scratch ? *scratch : local));
  const at::Tensor bounds = offsets.to(at::kCPU);
  const int64_t tasks = bounds.size(0) - 1;
  const int64_t* off = bounds.data_ptr<int64_t>();
  at::Tensor out = at::empty({xs.size(0), xs.size(1), tasks}, xs.options().dtype(at::kLong));
  for (int64_t t = 0; t < tasks; ++t) {
    out.select(2, t).copy_(logits.narrow(2, off[t], off[t + 1] - off[t]).argmax(2));
  }
  return out;
}

}  // namespace ftlens
