// The pairwise tile engine: walks the upper triangle of the n x n pair space in T x T
// tiles, forms each tile's kernel or dissimilarity values from one GEMM per side plus an
// elementwise map, and feeds them to one fused reducer. Memory O(n + T^2).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tiles/maps.h"

namespace ftlens {

// How one side's rows become the value of each pair (i, j): rows are prepared (a column
// mean subtracted, rows centered and/or normalized), then g = <x_i, x_j> and the squared
// norms a_i, a_j are mapped to the value.
struct PairSide {
  std::string name = "X";       // for error messages
  tiles::Map map = tiles::kLinear;  // linear: g | one_minus: 1 - g | sqeuclidean: a_i + a_j - 2g
                                    // | euclidean: its square root | rbf: exp(-gamma * sqeuclidean)
  double gamma = 0.0;           // rbf only
  at::Tensor column_mean;       // [d] float64 subtracted from every row; undefined: none
  bool center_rows = false;     // subtract each row's own mean (correlation distance)
  bool normalize_rows = false;  // unit rows (cosine, correlation distance)
  double shift = 0.0;           // subtracted from each value before it is summed (hsic, pearson)
  // histogram and ranks: `bins` equal bins over [lo, hi), one below and one above
  double lo = 0.0, hi = 0.0;
  int64_t bins = 0;
  at::Tensor counts;            // ranks: [bins + 2] float64 values per bin (the histogram pass)
  double min = 0.0, max = 0.0;  // ranks: the smallest and largest value (the histogram pass)
  double select_lo = 0.0, select_hi = 0.0;  // select: keep values in [select_lo, select_hi)
  int64_t capacity = 0;                     // select on CUDA: how many values it may keep
};

// Reducers:
//   "hsic"      sums over i != j of k*l, k*k, l*l; off-diagonal row sums; the diagonals
//   "pearson"   co-moment sums of the pairs i < j (shifted values): count, sx, sy, sxx, syy, sxy
//   "histogram" per side: counts [bins + 2], min, max of the values i < j
//   "ranks"     "pearson" on values mapped to interpolated ranks through the histogram
//   "collect"   every value i < j, in row-major upper-triangle order: x, y [n(n-1)/2]
//   "select"    the values i < j in [select_lo, select_hi) per side, in no set order, and
//               the count of values below select_lo
class PairEngine {
 public:
  // x: [n, p], y: [n, q] or undefined (one side; "histogram", "select" and "collect" only).
  // dtype: the GEMM and map precision (float32 or float64); sums are float64.
  PairEngine(at::Tensor x, at::Tensor y, PairSide sx, PairSide sy, tiles::Reducer reducer, int64_t tile,
             bool double_precision);

  int64_t n() const { return n_; }
  int64_t tile() const { return tile_; }
  int64_t blocks() const { return (n_ + tile_ - 1) / tile_; }
  // The tiles (block, j) for every j >= block: one stripe of the upper triangle.
  void run_stripe(int64_t block);
  std::map<std::string, at::Tensor> result() const;
  std::mutex& mutex() { return mutex_; }

 private:
  struct Block {
    at::Tensor rows;   // [t, d] prepared rows in dtype_
    at::Tensor norms;  // [t] squared norms of the prepared rows, in dtype_
  };
  Block block(const at::Tensor& src, const PairSide& side, int64_t r0, int64_t r1) const;
  template <typename T, typename F>
  void for_pairs(const at::Tensor& gx, const at::Tensor& gy, const Block& xi, const Block& xj, const Block& yi,
                 const Block& yj, bool diagonal, F&& f);
  template <typename T>
  void reduce_tile(int64_t i0, int64_t j0, const at::Tensor& gx, const at::Tensor& gy, const Block& xi,
                   const Block& xj, const Block& yi, const Block& yj, bool diagonal);
  void reduce_tile_cuda(int64_t i0, int64_t j0, const at::Tensor& gx, const at::Tensor& gy, const Block& xi,
                        const Block& xj, const Block& yi, const Block& yj, bool diagonal);
  std::array<double, 6> total_sums() const;
  void ensure_threads();

  at::Tensor x_, y_;
  PairSide sx_, sy_;
  int reducer_, map_x_, map_y_;
  int64_t n_, tile_, threads_ = 0;
  at::ScalarType dtype_;
  bool two_sided_, cuda_;
  // per-thread partial state, combined in result()
  std::vector<std::array<double, 6>> sums_;          // hsic: kl kk ll; pearson/ranks: sx sy sxx syy sxy count
  std::vector<std::vector<int64_t>> hist_x_, hist_y_;
  std::vector<std::array<double, 4>> extremes_;      // min x, max x, min y, max y
  std::vector<std::vector<double>> picked_x_, picked_y_;
  std::vector<std::vector<double>> column_x_, column_y_;  // hsic: a tile's column sums per thread
  at::Tensor row_x_, row_y_, diag_x_, diag_y_;       // hsic: [n] float64
  at::Tensor out_x_, out_y_;                         // collect: [n(n-1)/2] float64
  std::vector<double> rank_base_x_, rank_base_y_;    // ranks: values before each bin
  // on CUDA the state lives on the device and the kernels add into it with atomics
  at::Tensor dev_sums_, dev_counts_x_, dev_counts_y_, dev_extremes_, dev_counters_;
  at::Tensor dev_rank_counts_x_, dev_rank_counts_y_, dev_base_x_, dev_base_y_;
  std::mutex mutex_;
};

}  // namespace ftlens
