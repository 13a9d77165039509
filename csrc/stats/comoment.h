// A merged co-moment block of two row sets a [n, p] and b [n, q]: the count, both means and
// the centered cross products S = sum_i (a_i - mean_a)(b_i - mean_b)^T, in float64, merged
// exactly with Chan's rule. The moments core keeps one per layer and compared layer pair;
// ridge probes keep one per layer and fold (a = activations, b = one-hot labels).
//
// A chunk enters in a lazy form: the raw product of its rows shifted by nearby fixed
// points (computed in the rows' dtype, e.g. a float32 GEMM) and the residuals r = mean -
// shift, so that S = product - m r_a r_b^T; the correction is folded in when merging.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

namespace ftlens {

class CoMoment {
 public:
  CoMoment() = default;

  // No rows yet: zero means and co-moments (float64, `opts`' device).
  static CoMoment empty(int64_t p, int64_t q, const at::TensorOptions& opts);

  // A chunk of m rows: product = sum_i (a_i - c)(b_i - d)^T [p, q] in any float dtype, the
  // float64 means [p], [q], and the residuals mean - c, mean - d.
  static CoMoment chunk(int64_t m, at::Tensor mean_a, at::Tensor mean_b, at::Tensor product,
                        at::Tensor residual_a, at::Tensor residual_b);

  // Adds another block's rows (Chan: S += S_o + n n_o / (n + n_o) dmean_a dmean_b^T).
  void merge(const CoMoment& other);

  double n() const { return n_; }
  const at::Tensor& mean_a() const { return mean_a_; }
  const at::Tensor& mean_b() const { return mean_b_; }
  at::Tensor dense() const;                               // S, float64 [p, q]
  at::Tensor dense_into(at::Tensor out) const;            // S written to out (float64 [p, q])
  at::Tensor times(const at::Tensor& t) const;            // S t, float64 [p]
  at::Tensor transposed_times(const at::Tensor& s) const; // S^T s, float64 [q]

  CoMoment to(const at::Device& device) const;
  std::map<std::string, at::Tensor> state_dict(const std::string& prefix) const;
  // Reads the keys state_dict wrote under `prefix`; shapes must match `p`, `q`.
  static CoMoment from_state_dict(const std::map<std::string, at::Tensor>& state,
                                  const std::string& prefix, int64_t p, int64_t q,
                                  const at::TensorOptions& opts);

 private:
  bool lazy() const { return residual_a_.defined(); }

  double n_ = 0;
  at::Tensor mean_a_, mean_b_;  // [p], [q] float64
  at::Tensor product_;          // [p, q]: S itself (float64), or a chunk's raw product
  at::Tensor residual_a_, residual_b_;  // defined only for a chunk's lazy form
};

// The tensor stored under `key`, checked against the expected shape; a clear error
// names the key when it is missing or has another shape.
at::Tensor state_entry(const std::map<std::string, at::Tensor>& state, const std::string& key,
                       at::IntArrayRef sizes);

}  // namespace ftlens
