// Streaming moments of L layers of two representations X [n, p] and Y [n, q].
//
// Per layer and view (raw rows, unit rows, row-centered unit rows) we keep, in float64:
//   side:  mean, a fixed shift c, a1 = sum_i alpha_i with alpha_i = ||x_i - c||^2,
//          unit_sum = sum_i x_i / ||x_i|| and the count of all-zero rows;
//   cross: for (X, X), (Y, Y) and each compared pair (X_l, Y_m):
//          S  = sum_i (x_i - mu)(y_i - nu)^T   (centered co-moment, Chan's merge),
//          ab = sum_i alpha_i beta_i, xb = sum_i beta_i (x_i - c), ya = sum_i alpha_i (y_i - d).
// The row-norm statistics are kept about the shift and moved exactly to another shift
// (another accumulator's, or the final mean) by `rebase`. A chunk is itself a small
// accumulator (shift = its rounded mean), merged into the running one.
#pragma once

#include <torch/extension.h>

#include <map>
#include <string>
#include <vector>

namespace ftlens {

struct SideStack {
  at::Tensor mean;       // [L, d]
  at::Tensor shift;      // [L, d]
  at::Tensor a1;         // [L]
  at::Tensor unit_sum;   // [L, d]
  at::Tensor zero_rows;  // [L] int64
};

struct CrossStack {
  at::Tensor S;   // [P, p, q]
  at::Tensor ab;  // [P]
  at::Tensor xb;  // [P, p]
  at::Tensor ya;  // [P, q]
  // A chunk's block is kept lazily as the raw GEMM (in the input dtype) and a rank-one
  // centering term: co-moment = S - rows * rx ry^T. Accumulated state has rx undefined.
  at::Tensor rx, ry;  // [P, p], [P, q]
  double rows = 0;

  bool lazy() const { return rx.defined(); }
  at::Tensor times(const at::Tensor& t) const;            // co-moment @ t, float64 [P, p]
  at::Tensor transposed_times(const at::Tensor& s) const; // co-moment^T @ s, float64 [P, q]
  at::Tensor dense() const;                               // float64 co-moment
};

struct ViewState {
  SideStack x, y;
  CrossStack xx, yy, xy;  // xx, yy: one block per layer; xy: one block per compared pair
};

enum class View { Raw, Cosine, Correlation };

class MomentsCore {
 public:
  // pairs: "diagonal" (layer l of X with layer l of Y) or "all" (every l, m).
  // views: any of "raw", "cosine", "correlation". q == 0: X only (no cross blocks).
  MomentsCore(int64_t layers, int64_t p, int64_t q, const std::string& pairs,
              const std::vector<std::string>& views);

  // xs: [L, m, p], ys: [L, m, q] (undefined when q == 0); same float dtype and device.
  void update(const at::Tensor& xs, const at::Tensor& ys);
  void merge(const MomentsCore& other);
  void reset();

  std::map<std::string, at::Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, at::Tensor>& state);

  // Statistics of a view moved to shift = mean (what the measures read).
  ViewState finalized(View view) const;
  bool has_view(View view) const;
  const at::Tensor& pair_x() const { return ix_; }
  const at::Tensor& pair_y() const { return iy_; }

  int64_t layers() const { return layers_; }
  int64_t p() const { return p_; }
  int64_t q() const { return q_; }
  int64_t n() const { return n_; }
  int64_t chunks() const { return chunks_; }
  double eps() const { return eps_; }
  const std::string& pairs() const { return pairs_; }
  std::vector<std::string> view_names() const;

 private:
  ViewState empty_view(const at::TensorOptions& opts) const;
  // xs, ys: the chunk's rows for one view (float64 for the unit-row views); GEMMs in dtype.
  ViewState chunk_view(const at::Tensor& xs, const at::Tensor& ys, at::ScalarType dtype,
                       const char* view_name) const;
  void merge_view(ViewState& into, const ViewState& other, int64_t n_other) const;
  void to_device(const at::Device& device);
  // A buffer of these sizes for per-chunk temporaries, kept across updates under `key`:
  // a fresh multi-megabyte tensor costs a page fault per 4 KiB the first time it is written.
  at::Tensor scratch(const std::string& key, at::IntArrayRef sizes, const at::TensorOptions& opts) const;

  int64_t layers_, p_, q_;
  std::string pairs_;
  std::vector<View> views_;
  at::Tensor ix_, iy_;  // [P] layer of X and of Y in each compared pair
  at::Tensor own_;      // [L] 0..L-1: the layer index of each own (X, X) / (Y, Y) block
  int64_t n_ = 0;
  int64_t chunks_ = 0;
  double eps_ = 0.0;  // unit roundoff of the least precise input seen
  std::vector<ViewState> state_;
  mutable std::map<std::string, at::Tensor> scratch_;  // flat buffers, grown on demand
};

View parse_view(const std::string& name);
std::string view_name(View view);

}  // namespace ftlens
