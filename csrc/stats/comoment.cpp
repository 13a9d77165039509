#include "stats/comoment.h"

#include <sstream>
#include <c10/util/Exception.h>

#include "ops/add_into.h"

namespace ftlens {

using at::Tensor;

CoMoment CoMoment::empty(int64_t p, int64_t q, const at::TensorOptions& opts) {
  CoMoment c;
  c.mean_a_ = at::zeros({p}, opts.dtype(at::kDouble));
  c.mean_b_ = at::zeros({q}, opts.dtype(at::kDouble));
  c.product_ = at::zeros({p, q}, opts.dtype(at::kDouble));
  return c;
}

CoMoment CoMoment::chunk(int64_t m, Tensor mean_a, Tensor mean_b, Tensor product, Tensor residual_a,
                         Tensor residual_b) {
  CoMoment c;
  c.n_ = static_cast<double>(m);
  c.mean_a_ = std::move(mean_a);
  c.mean_b_ = std::move(mean_b);
  c.product_ = std::move(product);
  c.residual_a_ = std::move(residual_a);
  c.residual_b_ = std::move(residual_b);
  return c;
}

Tensor CoMoment::dense() const {
  return dense_into(at::empty(product_.sizes(), product_.options().dtype(at::kDouble)));
}

Tensor CoMoment::dense_into(Tensor out) const {
  out.copy_(product_);
  if (lazy()) out.addr_(residual_a_, residual_b_, 1.0, -n_);
  return out;
}

Tensor CoMoment::times(const Tensor& t) const {
  Tensor out = at::mv(product_, t.to(product_.scalar_type())).to(at::kDouble);
  return lazy() ? out - n_ * residual_a_ * at::dot(residual_b_, t) : out;
}

Tensor CoMoment::transposed_times(const Tensor& s) const {
  Tensor out = at::mv(product_.t(), s.to(product_.scalar_type())).to(at::kDouble);
  return lazy() ? out - n_ * residual_b_ * at::dot(residual_a_, s) : out;
}

void CoMoment::merge(const CoMoment& other) {
  if (other.n_ == 0) return;
  if (n_ == 0) {
    n_ = other.n_;
    mean_a_ = other.mean_a_.to(at::kDouble, false, true);
    mean_b_ = other.mean_b_.to(at::kDouble, false, true);
    // A private copy, as merges update it in place: into the (private) zeros of an empty
    // block, rather than a fresh buffer that would fault its pages in again.
    const bool reuse = product_.defined() && product_.sizes() == other.product_.sizes() &&
                       product_.scalar_type() == at::kDouble && product_.device() == other.product_.device();
    product_ = reuse ? other.dense_into(product_) : other.dense();
    residual_a_ = residual_b_ = Tensor();
    return;
  }
  const double n1 = n_, n2 = other.n_, w = n1 * n2 / (n1 + n2);
  const Tensor da = other.mean_a_ - mean_a_, db = other.mean_b_ - mean_b_;
  add_into(product_, other.product_);  // float32 products are promoted element by element
  if (other.lazy()) {
    // Chan's term and the chunk's own centering as one rank-two update.
    product_.addmm_(at::stack({da * w, other.residual_a_ * -n2}, 1),
                    at::stack({db, other.residual_b_}, 0));
  } else {
    product_.addr_(da, db, 1.0, w);
  }
  mean_a_ = mean_a_ + da * (n2 / (n1 + n2));
  mean_b_ = mean_b_ + db * (n2 / (n1 + n2));
  n_ = n1 + n2;
}

CoMoment CoMoment::to(const at::Device& device) const {
  CoMoment c = *this;
  for (Tensor* t : {&c.mean_a_, &c.mean_b_, &c.product_, &c.residual_a_, &c.residual_b_}) {
    if (t->defined()) *t = t->to(device);
  }
  return c;
}

std::map<std::string, Tensor> CoMoment::state_dict(const std::string& prefix) const {
  const auto cpu = [](const Tensor& t) { return t.detach().to(at::kCPU, at::kDouble, false, true); };
  return {{prefix + "n", at::tensor({n_}, at::TensorOptions().dtype(at::kDouble))},
          {prefix + "mean_a", cpu(mean_a_)},
          {prefix + "mean_b", cpu(mean_b_)},
          {prefix + "S", cpu(dense())}};
}

Tensor state_entry(const std::map<std::string, Tensor>& state, const std::string& key,
                   at::IntArrayRef sizes) {
  const auto it = state.find(key);
  if (it == state.end()) {
    C10_THROW_ERROR(ValueError, "state dict does not fit: key '" + key +
                                "' is missing (was it saved from an accumulator built with the "
                                "same arguments?)");
  }
  if (it->second.sizes() != sizes) {
    std::ostringstream msg;
    msg << "state dict does not fit: '" << key << "' has shape " << it->second.sizes()
        << ", expected " << sizes << " (saved from an accumulator with other dimensions?)";
    C10_THROW_ERROR(ValueError, msg.str());
  }
  return it->second;
}

CoMoment CoMoment::from_state_dict(const std::map<std::string, Tensor>& state,
                                   const std::string& prefix, int64_t p, int64_t q,
                                   const at::TensorOptions& opts) {
  const auto opts64 = opts.dtype(at::kDouble);
  CoMoment c;
  c.n_ = state_entry(state, prefix + "n", {1}).item<double>();
  if (c.n_ < 0) C10_THROW_ERROR(ValueError, "state dict does not fit: negative row count at " + prefix + "n");
  c.mean_a_ = state_entry(state, prefix + "mean_a", {p}).to(opts64, false, true);
  c.mean_b_ = state_entry(state, prefix + "mean_b", {q}).to(opts64, false, true);
  c.product_ = state_entry(state, prefix + "S", {p, q}).to(opts64, false, true);
  return c;
}

}  // namespace ftlens
