// Ridge probes from merged co-moment blocks: per layer and cross-validation fold, the
// centered X^T X and X^T Y of the rows (Y: one-hot label columns of every task side by
// side), so that one pass gives the solution for every regularization strength and exact
// K-fold cross-validation (each fold predicted by the blocks of the other folds).
#pragma once

#include <ATen/ATen.h>

#include <mutex>
#include <tuple>
#include <vector>

#include "stats/comoment.h"

namespace ftlens {

class RidgeCore {
 public:
  // layers x p features, q label columns in all, `folds` cross-validation folds.
  RidgeCore(int64_t layers, int64_t p, int64_t q, int64_t folds);

  // xs [L, m, p] float32 or float64; labels [m, T] int64 class index within each task
  // (0 <= label < task width); offsets [T + 1] the tasks' column bounds; fold [m] int64.
  void update(const at::Tensor& xs, const at::Tensor& labels, const at::Tensor& offsets, const at::Tensor& fold);

  // Held-out squared error of every fold's rows under the fit on the other folds, for
  // every strength: [L, folds, alphas, T] float64 (summed over each task's columns).
  at::Tensor cv_errors(const at::Tensor& alphas, const at::Tensor& offsets) const;

  // The fit on all rows, task t's columns with strength alphas[l, t]: (w [L, p, q],
  // b [L, q]) float64, minimizing |Y - X w - b|^2 + alpha |w|^2 column by column.
  std::tuple<at::Tensor, at::Tensor> solve(const at::Tensor& alphas, const at::Tensor& offsets) const;

  // Mean and covariance of the features over all rows: ([L, p], [L, p, p]) float64 (the
  // logistic probes' preconditioner comes from them).
  std::tuple<at::Tensor, at::Tensor> feature_moments() const;

  at::Tensor fold_rows() const;  // [folds] rows seen per fold
  int64_t layers() const { return layers_; }
  int64_t p() const { return p_; }
  int64_t q() const { return q_; }
  int64_t folds() const { return folds_; }
  std::mutex& mutex() const { return mutex_; }

 private:
  struct Fit;  // the blocks of a set of folds, with X^T X's eigendecomposition
  Fit fit(int64_t layer, int64_t held_out) const;
  const CoMoment& xx(int64_t l, int64_t f) const { return xx_[l * folds_ + f]; }
  const CoMoment& xy(int64_t l, int64_t f) const { return xy_[l * folds_ + f]; }

  int64_t layers_, p_, q_, folds_;
  std::vector<CoMoment> xx_, xy_;  // [layer * folds + fold]
  mutable std::mutex mutex_;
};

}  // namespace ftlens
