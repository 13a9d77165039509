// Streaming moments of L layers of two representations X [n, p] and Y [n, q].
//
// For each view (raw rows, unit rows, row-centered unit rows) we keep, in float64:
//   per layer and stream (a Side): the mean, a fixed shift c (the first chunk's mean),
//     norm2_sum = sum_i ||x_i - c||^2, unit_sum = sum_i x_i / ||x_i|| and the count of
//     all-zero rows;
//   per block (a layer with itself for X and Y, and each compared pair (X_l, Y_m)): a
//     CoMoment (centered cross products, Chan merge) and the row-norm terms of RSA:
//     norm2_products = sum_i alpha_i beta_i, x_by_partner_norm2 = sum_i beta_i (x_i - c),
//     y_by_partner_norm2 = sum_i alpha_i (y_i - d), with alpha_i = ||x_i - c||^2 and
//     beta_i = ||y_i - d||^2.
// The row-norm terms are kept about the shifts and moved exactly to other shifts (another
// accumulator's, or the final mean) by `rebase`.
//
// An update walks the layers one at a time (for pairs="all", every pair), so its working
// memory is a few [rows, width] buffers per stream, whatever the number of layers and
// views: each chunk block is merged as soon as it is formed.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ops/scratch.h"
#include "ops/unit_rows.h"
#include "stats/comoment.h"

namespace ftlens {

// One layer of one stream.
struct Side {
  at::Tensor mean;       // [d]
  at::Tensor shift;      // [d]
  at::Tensor norm2_sum;  // []
  at::Tensor unit_sum;   // [d]
  at::Tensor zero_rows;  // [] int64
};

// One co-moment block with the row-norm terms RSA needs.
struct Block {
  CoMoment co;
  at::Tensor norm2_products;      // []
  at::Tensor x_by_partner_norm2;  // [p]
  at::Tensor y_by_partner_norm2;  // [q]
};

// Finalized statistics of a view (shift = mean), stacked over layers ([L, ...]) and
// compared pairs ([P, ...]): what the measures read.
struct SideStack {
  at::Tensor mean, shift, norm2_sum, unit_sum, zero_rows;
};
struct BlockStack {
  at::Tensor S, norm2_products, x_by_partner_norm2, y_by_partner_norm2;
};
struct ViewState {
  SideStack x, y;
  BlockStack xx, yy, xy;  // xx, yy: one block per layer; xy: one per compared pair
};

// The closed sets the accumulator takes (bound as the enums _C.View and _C.Pairs).
enum class View { Raw, Cosine, Correlation };
enum class Pairs { Diagonal, All };

struct PreparedRows;  // one layer of one stream of a chunk, centered (moments.cpp)

class MomentsCore {
 public:
  // pairs: Diagonal (layer l of X with layer l of Y) or All (every l, m).
  // views: any of Raw, Cosine, Correlation. q == 0: X only (no cross blocks).
  MomentsCore(int64_t layers, int64_t p, int64_t q, Pairs pairs, const std::vector<View>& views);

  // xs: [L, m, p], ys: [L, m, q] (undefined when q == 0); same float dtype and device.
  void update(const at::Tensor& xs, const at::Tensor& ys);
  // Raises as update() would on these rows, numbered as if `rows_before` more rows had been
  // accumulated (rows held back to be added later); accumulates nothing.
  void check(const at::Tensor& xs, const at::Tensor& ys, int64_t rows_before) const;
  void merge(const MomentsCore& other);
  void reset();
  // Moves every side's shift (and the blocks' row-norm terms with it) to `reference`'s,
  // exactly: afterwards the statistics of accumulators rebased to one reference are sums
  // over their rows about the same points (what a weighted merge adds). Same configuration.
  void rebase_to(const MomentsCore& reference);

  std::map<std::string, at::Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, at::Tensor>& state);

  // Statistics of a view moved to shift = mean (what the measures read).
  ViewState finalized(View view) const;
  const at::Tensor& pair_x() const { return pair_x_; }
  const at::Tensor& pair_y() const { return pair_y_; }

  int64_t layers() const { return layers_; }
  int64_t p() const { return p_; }
  int64_t q() const { return q_; }
  int64_t n() const { return n_; }
  int64_t chunks() const { return chunks_; }
  double eps() const { return eps_; }
  Pairs pairs() const { return pairs_; }
  const std::vector<View>& views() const { return views_; }
  std::vector<std::string> view_names() const;

  // Held by every public entry point of the bindings: concurrent calls on one accumulator
  // serialize (each releases the GIL, so other Python threads run meanwhile).
  std::mutex& mutex() const { return mutex_; }

 private:
  // The accumulated statistics of one view.
  struct Accumulated {
    std::vector<Side> x, y;             // [L] each
    std::vector<Block> xx, yy, xy;      // [L], [L], [P]
  };

  Accumulated empty_view(const at::TensorOptions& opts) const;
  // What one sweep over a chunk's rows of one stream found, for every layer: the column
  // sums [L, d] (raw view) and each unit view's scales (unit_row_scales), in views_ order.
  struct Survey {
    at::Tensor sums;
    std::vector<UnitScales> unit;
  };
  // One layer's rows of one stream, prepared for a view from the survey of its stack.
  PreparedRows prepare(const at::Tensor& rows, const Survey& survey, size_t view_index, int64_t layer,
                       at::ScalarType gemm_dtype, const char* stream);
  void update_view(size_t view_index, Accumulated& into, const at::Tensor& xs, const at::Tensor& ys,
                   const Survey& survey_x, const Survey& survey_y);
  void merge_block(Block& into, const Block& other, const Side& into_x, const Side& into_y,
                   const Side& other_x, const Side& other_y, bool own) const;
  void merge_view(Accumulated& into, const Accumulated& other, double n_other) const;
  // Surveys the rows and raises naming the layer and row of the first NaN/Inf row, or of
  // a row that a requested unit view cannot normalize (zero, or constant for
  // "correlation"), before anything is merged. Sets `peak` to the largest magnitude (1
  // without a raw view: unit rows fit float32 GEMMs whatever the input's scale).
  Survey check_rows_usable(const at::Tensor& rows, const char* stream, double& peak,
                           int64_t rows_before = 0) const;
  // The shapes, dtypes and devices update() takes.
  void check_stacks(const at::Tensor& xs, const at::Tensor& ys) const;
  void to_device(const at::Device& device);
  static void move(Accumulated& a, const at::Device& device);

  int64_t layers_, p_, q_;
  Pairs pairs_;
  std::vector<View> views_;
  at::Tensor pair_x_, pair_y_;  // [P] layer of X and of Y in each compared pair
  int64_t n_ = 0;
  int64_t chunks_ = 0;
  double eps_ = 0.0;  // unit roundoff of the least precise input seen
  std::vector<Accumulated> state_;  // one per view
  at::Device device_ = at::kCPU;
  Scratch scratch_;  // working buffers (centered rows, products), reused layer after layer
  mutable std::mutex mutex_;
};

std::string view_name(View view);
const char* pairs_name(Pairs pairs);

}  // namespace ftlens
