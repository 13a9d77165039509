#include "probes/ridge.h"

#include <ATen/record_function.h>

#include <c10/util/Exception.h>

#include "ops/dispatch.h"
#include "stats/gram.h"

namespace ftlens {

using at::Tensor;

struct RidgeCore::Fit {
  double n;
  Tensor mean_x, mean_y;  // [p], [q]
  Tensor eigenvalues;     // [p] of the centered X^T X
  Tensor basis;           // [p, p] its eigenvectors
  Tensor z;               // [p, q] basis^T X^T Y
};

RidgeCore::RidgeCore(int64_t layers, int64_t p, int64_t q, int64_t folds)
    : layers_(layers), p_(p), q_(q), folds_(folds) {
  TORCH_CHECK_VALUE(layers > 0 && p > 0 && q > 0 && folds > 0, "RidgeCore: sizes must be positive");
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  for (int64_t i = 0; i < layers * folds; ++i) {
    xx_.push_back(CoMoment::empty(p, p, opts));
    xy_.push_back(CoMoment::empty(p, q, opts));
  }
}

namespace {

// One-hot columns of every task side by side: [m, q] in `dtype`.
Tensor one_hot(const Tensor& labels, const Tensor& offsets, int64_t q, at::ScalarType dtype) {
  TORCH_CHECK_VALUE(labels.min().item<int64_t>() >= 0, "ridge probes need a label on every row");
  const Tensor columns = labels + offsets.narrow(0, 0, labels.size(1)).unsqueeze(0);
  TORCH_CHECK_VALUE((columns < offsets.narrow(0, 1, labels.size(1)).unsqueeze(0)).all().item<bool>(),
              "ridge: a label lies beyond its task's columns");
  Tensor out = at::zeros({labels.size(0), q}, labels.options().dtype(dtype));
  out.scatter_(1, columns, 1.0);
  return out;
}

}  // namespace

void RidgeCore::update(const Tensor& xs, const Tensor& labels, const Tensor& offsets, const Tensor& fold) {
  RECORD_FUNCTION("ftlens::ridge_update", {});
  check_rows(xs, "ridge update");
  TORCH_CHECK_VALUE(xs.size(0) == layers_ && xs.size(2) == p_, "ridge update: expected rows [", layers_, ", m, ", p_,
              "], got ", xs.sizes());
  const int64_t m = xs.size(1);
  TORCH_CHECK_VALUE(labels.dim() == 2 && labels.size(0) == m && fold.dim() == 1 && fold.size(0) == m,
              "ridge update: labels [m, T] and fold [m] must match the rows");
  TORCH_CHECK_VALUE(offsets.size(0) == labels.size(1) + 1 && offsets[-1].item<int64_t>() == q_,
              "ridge update: offsets must bound the ", q_, " label columns");
  if (m == 0) return;
  const Tensor folds = fold.to(at::kCPU, at::kLong);
  TORCH_CHECK_VALUE(folds.min().item<int64_t>() >= 0 && folds.max().item<int64_t>() < folds_,
              "ridge update: fold index out of range");
  const Tensor targets = one_hot(labels.to(xs.device()), offsets.to(xs.device()), q_, xs.scalar_type());
  for (int64_t f = 0; f < folds_; ++f) {
    // one fold (no cross-validation) takes every row as it is, without gathering a copy
    const Tensor rows = folds_ == 1 ? Tensor() : (folds == f).nonzero().flatten().to(xs.device());
    const int64_t mf = rows.defined() ? rows.size(0) : m;
    if (mf == 0) continue;
    const Tensor y = rows.defined() ? targets.index_select(0, rows) : targets;
    const Tensor mean_y = y.sum(0, false, at::kDouble) / static_cast<double>(mf);
    for (int64_t l = 0; l < layers_; ++l) {
      CoMoment& into_xx = xx_[l * folds_ + f];
      const Tensor x = rows.defined() ? xs[l].index_select(0, rows) : xs[l];
      // Shift by a nearby point (the fold's mean so far, or this chunk's) so the rows' dtype GEMMs
      // see centered values; the chunk's mean is then the shift plus the centered values' mean,
      // summed in the rows' dtype without a float64 copy of the chunk.
      const Tensor shift = into_xx.n() > 0 ? into_xx.mean_a().to(x.scalar_type()) : x.mean(0);
      const Tensor centered = x - shift;
      const Tensor residual = centered.sum(0).to(at::kDouble) / static_cast<double>(mf);
      const Tensor mean_x = shift.to(at::kDouble) + residual;
      into_xx.merge(CoMoment::chunk(mf, mean_x, mean_x, gram(centered), residual, residual));
      xy_[l * folds_ + f].merge(CoMoment::chunk(mf, mean_x, mean_y, at::mm(centered.t(), y), residual, mean_y));
    }
  }
}

Tensor RidgeCore::fold_rows() const {
  Tensor out = at::zeros({folds_}, at::kDouble);
  for (int64_t f = 0; f < folds_; ++f) out[f] = xx(0, f).n();
  return out;
}

std::tuple<Tensor, Tensor> RidgeCore::feature_moments() const {
  Tensor mean = at::empty({layers_, p_}, at::kDouble), cov = at::empty({layers_, p_, p_}, at::kDouble);
  for (int64_t l = 0; l < layers_; ++l) {
    CoMoment all = CoMoment::empty(p_, p_, at::TensorOptions().dtype(at::kDouble));
    for (int64_t f = 0; f < folds_; ++f) all.merge(xx(l, f));
    TORCH_CHECK_VALUE(all.n() > 0, "ridge: no rows yet");
    mean[l].copy_(all.mean_a());
    cov[l].copy_(all.dense() / all.n());
  }
  return {mean, cov};
}

RidgeCore::Fit RidgeCore::fit(int64_t layer, int64_t held_out) const {
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  CoMoment sxx = CoMoment::empty(p_, p_, opts), sxy = CoMoment::empty(p_, q_, opts);
  for (int64_t f = 0; f < folds_; ++f) {
    if (f == held_out) continue;
    sxx.merge(xx(layer, f));
    sxy.merge(xy(layer, f));
  }
  if (sxx.n() < 2) C10_THROW_ERROR(ValueError, "ridge: fewer than 2 training rows in a fold's complement");
  auto [eigenvalues, basis] = at::linalg_eigh(sxx.dense());
  Tensor z = at::mm(basis.t(), sxy.dense());
  return Fit{sxx.n(), sxx.mean_a(), sxy.mean_b(), eigenvalues.clamp_min(0.0), basis, z};
}

namespace {

// [p] or [q] shrinkage 1 / (lambda + alpha) of every eigen-direction.
Tensor shrink(const Tensor& eigenvalues, double alpha) { return (eigenvalues + alpha).reciprocal(); }

// Sums of the columns of each task: values [..., q] -> [..., T].
Tensor per_task(const Tensor& values, const Tensor& offsets) {
  const int64_t tasks = offsets.size(0) - 1;
  const int64_t* off = offsets.data_ptr<int64_t>();
  std::vector<Tensor> parts;
  for (int64_t t = 0; t < tasks; ++t) parts.push_back(values.narrow(-1, off[t], off[t + 1] - off[t]).sum(-1));
  return at::stack(parts, -1);
}

}  // namespace

Tensor RidgeCore::cv_errors(const Tensor& alphas_in, const Tensor& offsets_in) const {
  RECORD_FUNCTION("ftlens::ridge_cv", {});
  const Tensor alphas = alphas_in.to(at::kCPU, at::kDouble).contiguous();
  const Tensor offsets = offsets_in.to(at::kCPU, at::kLong).contiguous();
  TORCH_CHECK_VALUE(alphas.dim() == 1 && (alphas > 0).all().item<bool>(), "ridge: alphas must be positive");
  const int64_t n_alpha = alphas.size(0), tasks = offsets.size(0) - 1;
  Tensor out = at::zeros({layers_, folds_, n_alpha, tasks}, at::kDouble);
  for (int64_t l = 0; l < layers_; ++l) {
    for (int64_t f = 0; f < folds_; ++f) {
      const CoMoment &hxx = xx(l, f), &hxy = xy(l, f);
      const double nf = hxx.n();
      if (nf == 0) C10_THROW_ERROR(ValueError, "ridge: a cross-validation fold has no rows");
      const Fit train = fit(l, f);
      const Tensor& v = train.basis;
      const Tensor m = at::mm(v.t(), at::mm(hxx.dense(), v));   // held-out X^T X in the eigenbasis
      const Tensor cross = at::mm(v.t(), hxy.dense());           // held-out X^T Y in the eigenbasis
      const Tensor dx = at::mv(v.t(), hxx.mean_a() - train.mean_x);
      const Tensor dy = hxy.mean_b() - train.mean_y;
      const Tensor own = nf * hxy.mean_b() * (1.0 - hxy.mean_b());  // centered Y^T Y of 0/1 columns
      for (int64_t a = 0; a < n_alpha; ++a) {
        const Tensor dz = train.z * shrink(train.eigenvalues, alphas[a].item<double>()).unsqueeze(1);
        const Tensor residual = dy - at::mv(dz.t(), dx);
        const Tensor error = own - 2.0 * (dz * cross).sum(0) + (dz * at::mm(m, dz)).sum(0) + nf * residual.square();
        out[l][f][a] = per_task(error, offsets);
      }
    }
  }
  return out;
}

std::tuple<Tensor, Tensor> RidgeCore::solve(const Tensor& alphas_in, const Tensor& offsets_in) const {
  RECORD_FUNCTION("ftlens::ridge_solve", {});
  const Tensor alphas = alphas_in.to(at::kCPU, at::kDouble).contiguous();
  const Tensor offsets = offsets_in.to(at::kCPU, at::kLong).contiguous();
  const int64_t tasks = offsets.size(0) - 1;
  TORCH_CHECK_VALUE(alphas.dim() == 2 && alphas.size(0) == layers_ && alphas.size(1) == tasks,
              "ridge solve: alphas must be [layers, tasks]");
  TORCH_CHECK_VALUE((alphas > 0).all().item<bool>(), "ridge: alphas must be positive");
  const int64_t* off = offsets.data_ptr<int64_t>();
  Tensor w = at::empty({layers_, p_, q_}, at::kDouble), b = at::empty({layers_, q_}, at::kDouble);
  for (int64_t l = 0; l < layers_; ++l) {
    const Fit all = fit(l, -1);
    for (int64_t t = 0; t < tasks; ++t) {
      const Tensor zt = all.z.narrow(1, off[t], off[t + 1] - off[t]);
      const Tensor shrunk = zt * shrink(all.eigenvalues, alphas[l][t].item<double>()).unsqueeze(1);
      w[l].narrow(1, off[t], off[t + 1] - off[t]).copy_(at::mm(all.basis, shrunk));
    }
    b[l].copy_(all.mean_y - at::mv(w[l].t(), all.mean_x));
  }
  return {w, b};
}

}  // namespace ftlens
