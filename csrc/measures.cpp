#include "measures.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <c10/util/Exception.h>
#include <vector>

namespace ftlens {
namespace {

using at::Tensor;

Tensor rowdot(const Tensor& a, const Tensor& b) { return (a * b).sum(-1); }

// Squared Frobenius norm of each block of s [B, p, q] (a dot product per block: no [p, q]
// temporary of squares).
Tensor frob2(const Tensor& s) {
  const Tensor flat = s.flatten(1);
  std::vector<Tensor> out;
  for (int64_t b = 0; b < flat.size(0); ++b) out.push_back(at::dot(flat[b], flat[b]));
  return at::stack(out);
}

// x^T S y for each block.
Tensor quad(const Tensor& x, const Tensor& s, const Tensor& y) {
  return rowdot(x, at::bmm(s, y.unsqueeze(-1)).squeeze(-1));
}

void require_rows(const MomentsCore& m, int64_t needed, const std::string& what) {
  if (m.n() < needed) {
    C10_THROW_ERROR(ValueError, what + " needs at least " + std::to_string(needed) +
                                " rows, got " + std::to_string(m.n()) +
                                ". Accumulate more rows before computing it.");
  }
}

void require_y(const MomentsCore& m, const std::string& what) {
  if (m.q() == 0) C10_THROW_ERROR(ValueError, what + " compares two streams, but these moments hold X only");
}

// Raises if any entry of `values` ([L]) is not > 0, naming the stream and layer.
void require_positive(const Tensor& values, const char* stream, const std::string& what) {
  const Tensor bad = (~(values > 0)).nonzero();
  if (bad.numel() == 0) return;
  std::ostringstream msg;
  msg << stream << " has zero variance at layer " << bad[0][0].item<int64_t>() << " ("
      << what << "), so the measure is undefined. Check that the layer's activations are "
      << "not constant across rows (e.g. a masked or padded position).";
  C10_THROW_ERROR(ValueError, msg.str());
}

// Which entries of `values` ([L]) are > 0: raises naming the first bad layer when
// `strict`, else returns the mask so that the caller reports those pairs as NaN.
Tensor positive(const Tensor& values, const char* stream, const std::string& what, bool strict) {
  if (strict) require_positive(values, stream, what);
  return values > 0;
}

// NaN where a pair's measure is undefined (ok false).
Tensor undefined_as_nan(const Tensor& values, const Tensor& ok) {
  return values.masked_fill(~ok, std::numeric_limits<double>::quiet_NaN());
}

Tensor layer_traces(const Tensor& s) { return s.diagonal(0, 1, 2).sum(-1); }

// The rounding floor of a variance: rows that are a constant plus rounding noise keep a
// spread of about eps times their magnitude. A total (or per-dimension) variance at or
// below (64 eps)^2 times the layer's mean squared row norm ||mean||^2 + tr(S)/n counts as
// zero, for every measure alike. side: [L, d] means; s: [L, d, d] co-moments -> [L].
Tensor variance_floor(const Tensor& mean, const Tensor& s, double n, double eps) {
  const double tol = 64 * eps;
  return tol * tol * ((mean * mean).sum(-1) + layer_traces(s) / n);
}

// Per layer: total variance above its rounding floor (raises naming the first constant
// layer when `strict`).
Tensor varies(const Tensor& mean, const Tensor& s, double n, double eps, const char* stream,
              const std::string& what, bool strict) {
  return positive(layer_traces(s) / n - variance_floor(mean, s, n, eps), stream, what, strict);
}

// Whitening maps V diag(lambda^-1/2) restricted to the kept directions ([L, d, d]), the
// kept count per layer, sqrt(lambda) on the kept directions (zeros elsewhere), the
// eigenvectors, and which layers have a direction at all.
struct Whitening {
  Tensor w, kept, root, v, ok;
};

// The relative error of accumulated co-moments: each chunk's GEMM rounds in the input's
// precision over its rows (an error growing like sqrt(rows) eps on centered rows), and
// chunks add in float64. A direction is kept when its variance lies above that error of
// the whole covariance, kErrorScale sqrt(chunk rows) eps tr(S): it does not shrink as the
// number of rows grows, so real low-variance directions stay.
constexpr double kErrorScale = 8.0;

double covariance_error(const MomentsCore& m) {
  const double chunk_rows = static_cast<double>(m.n()) / std::max<int64_t>(m.chunks(), 1);
  return kErrorScale * std::sqrt(std::max(chunk_rows, 1.0)) * m.eps();
}

Whitening whiten(const Tensor& s, const Tensor& ok, double error, CcaMethod method, int64_t k,
                 double threshold) {
  auto [lam, vec] = at::linalg_eigh(s);  // ascending
  lam = lam.flip(-1);
  vec = vec.flip(-1);
  const int64_t d = s.size(-1);
  Tensor keep = (lam > (error * layer_traces(s)).unsqueeze(-1)) & ok.unsqueeze(-1);
  if (method == CcaMethod::Svcca) {
    const Tensor rank = at::arange(d, keep.options().dtype(at::kLong)).unsqueeze(0);
    if (k > 0) {
      keep = keep & (rank < k);
    } else {
      // Smallest number of top directions that hold `threshold` of the variance.
      const Tensor pos = lam.clamp_min(0);
      const Tensor frac = pos.cumsum(-1) / pos.sum(-1, true).clamp_min(1e-300);
      const Tensor needed = (frac < threshold).sum(-1, true) + 1;
      keep = keep & (rank < needed);
    }
  }
  const Tensor safe = at::where(keep, lam, at::ones_like(lam));
  const Tensor scale = at::where(keep, safe.rsqrt(), at::zeros_like(lam));
  const Tensor root = at::where(keep, safe.sqrt(), at::zeros_like(lam));
  const Tensor kept = keep.sum(-1);
  return {vec * scale.unsqueeze(1), kept, root, vec, kept > 0};
}

View view_of_rdm(Rdm rdm) {
  if (rdm == Rdm::Cosine) return View::Cosine;
  if (rdm == Rdm::Correlation) return View::Correlation;
  return View::Raw;  // inner products and squared distances
}

// Off-diagonal RDM sums of one stream per layer: mean and centered sum of squares;
// and the centered cross sum per pair. Off-diagonal count N = n(n-1).
struct RdmSums {
  Tensor mean_x, cxx, mean_y, cyy, cxy;
};

RdmSums rdm_sums(const ViewState& v, const Tensor& ix, const Tensor& iy, double n,
                 Rdm rdm) {
  const double big_n = n * (n - 1);
  const Tensor a1 = v.x.norm2_sum, b1 = v.y.norm2_sum;
  const Tensor a2 = v.xx.norm2_products, b2 = v.yy.norm2_products;
  const Tensor sxx = frob2(v.xx.S), syy = frob2(v.yy.S), sxy = frob2(v.xy.S);
  Tensor sx, sy, sxx_off, syy_off, sxy_off, offset_x, offset_y;
  if (rdm == Rdm::SqEuclidean) {
    // D_ij = a_i + a_j - 2 e_i.e_j about the mean; its diagonal is zero.
    sx = 2 * n * a1;
    sy = 2 * n * b1;
    sxx_off = 2 * n * a2 + 2 * a1.square() + 4 * sxx;
    syy_off = 2 * n * b2 + 2 * b1.square() + 4 * syy;
    sxy_off = 2 * n * v.xy.norm2_products + 2 * a1.index_select(0, ix) * b1.index_select(0, iy) + 4 * sxy;
    offset_x = at::zeros_like(a1);
    offset_y = at::zeros_like(b1);
  } else {
    // K'_ij = t_i + t_j + e_i.e_j with t_i = mu.e_i (K minus the constant mu.mu);
    // sums over all ordered pairs, minus the diagonal K'_ii = 2 t_i + a_i.
    const Tensor mx = v.x.mean, my = v.y.mean;
    const Tensor qxx = quad(mx, v.xx.S, mx), qyy = quad(my, v.yy.S, my);
    const Tensor mxi = mx.index_select(0, ix), myi = my.index_select(0, iy);
    const Tensor qxy = quad(mxi, v.xy.S, myi);
    sx = -a1;
    sy = -b1;
    sxx_off = 2 * n * qxx + sxx - (4 * qxx + 4 * rowdot(mx, v.xx.x_by_partner_norm2) + a2);
    syy_off = 2 * n * qyy + syy - (4 * qyy + 4 * rowdot(my, v.yy.x_by_partner_norm2) + b2);
    sxy_off = 2 * n * qxy + sxy -
              (4 * qxy + 2 * rowdot(mxi, v.xy.x_by_partner_norm2) + 2 * rowdot(myi, v.xy.y_by_partner_norm2) + v.xy.norm2_products);
    // Dissimilarity = kappa + sigma * (mu.mu + K'); only its mean needs the constant.
    const double kappa = rdm == Rdm::Inner ? 0.0 : 1.0, sigma = rdm == Rdm::Inner ? 1.0 : -1.0;
    offset_x = kappa + sigma * rowdot(mx, mx);
    offset_y = kappa + sigma * rowdot(my, my);
    if (rdm != Rdm::Inner) {
      sx = -sx;
      sy = -sy;
    }
  }
  RdmSums r;
  r.mean_x = offset_x + sx / big_n;
  r.mean_y = offset_y + sy / big_n;
  r.cxx = sxx_off - sx.square() / big_n;
  r.cyy = syy_off - sy.square() / big_n;
  // Both RDMs share one type, so sigma_x * sigma_y = 1 and the cross sum keeps its sign.
  r.cxy = sxy_off - sx.index_select(0, ix) * sy.index_select(0, iy) / big_n;
  return r;
}

}  // namespace

const char* rdm_name(Rdm rdm) {
  switch (rdm) {
    case Rdm::Inner:
      return "inner";
    case Rdm::Cosine:
      return "cosine";
    case Rdm::Correlation:
      return "correlation";
    case Rdm::SqEuclidean:
      return "sqeuclidean";
  }
  return "inner";
}

Tensor cka(const MomentsCore& m, bool debiased, bool strict) {
  require_y(m, "cka");
  require_rows(m, debiased ? 4 : 2, debiased ? "debiased CKA" : "CKA");
  const ViewState v = m.finalized(View::Raw);
  const Tensor &ix = m.pair_x(), &iy = m.pair_y();
  const double n = static_cast<double>(m.n());
  Tensor okx = varies(v.x.mean, v.xx.S, n, m.eps(), "X", "CKA", strict);
  Tensor oky = varies(v.y.mean, v.yy.S, n, m.eps(), "Y", "CKA", strict);
  Tensor hxy = frob2(v.xy.S), hxx = frob2(v.xx.S), hyy = frob2(v.yy.S);
  if (debiased) {
    // n(n-3) * unbiased HSIC = ||Sxy||^2 - n/(n-2) sum a_i b_i + sum a sum b / ((n-1)(n-2)),
    // with a_i, b_i the squared norms of the centered rows.
    const double c1 = n / (n - 2), c2 = 1.0 / ((n - 1) * (n - 2));
    const Tensor a1 = v.x.norm2_sum, b1 = v.y.norm2_sum;
    hxy = hxy - c1 * v.xy.norm2_products + c2 * a1.index_select(0, ix) * b1.index_select(0, iy);
    hxx = hxx - c1 * v.xx.norm2_products + c2 * a1.square();
    hyy = hyy - c1 * v.yy.norm2_products + c2 * b1.square();
    okx = okx & positive(hxx, "X", "its unbiased HSIC is not positive; use more rows", strict);
    oky = oky & positive(hyy, "Y", "its unbiased HSIC is not positive; use more rows", strict);
  }
  return undefined_as_nan(hxy / (hxx.index_select(0, ix) * hyy.index_select(0, iy)).sqrt(),
                          okx.index_select(0, ix) & oky.index_select(0, iy));
}

Tensor rsa(const MomentsCore& m, Rdm rdm, Compare compare, bool strict) {
  require_y(m, "rsa");
  const View view = view_of_rdm(rdm);
  require_rows(m, 3, "RSA");
  const ViewState v = m.finalized(view);
  const Tensor &ix = m.pair_x(), &iy = m.pair_y();
  const double n = static_cast<double>(m.n());
  const RdmSums r = rdm_sums(v, ix, iy, n, rdm);
  const std::string what = std::string("its ") + rdm_name(rdm) + " RDM is constant";
  // Rows that are all equal may keep a rounding-level spread after centering (a float64
  // mean is not always exact), which would make a constant RDM look informative. Below
  // these floors of sum (D_ij - mean)^2 over the n(n-1) pairs an RDM counts as constant:
  // cosine and correlation distances lie in [0, 2]: a spread under 1e-12; inner products
  // (scale M = mean squared row norm) a spread under 64 eps M; squared distances, whose
  // centering error is second order, under (64 eps)^2 M.
  const double big_n = n * (n - 1), tol = 64 * m.eps();
  auto floor = [&](const ViewState& side_view, bool x_side) -> Tensor {
    const Tensor& mean = x_side ? side_view.x.mean : side_view.y.mean;
    const Tensor& a1 = x_side ? side_view.x.norm2_sum : side_view.y.norm2_sum;
    const Tensor scale = rowdot(mean, mean) + a1 / n;
    if (rdm == Rdm::Cosine || rdm == Rdm::Correlation) return at::full_like(a1, big_n * 1e-24);
    if (rdm == Rdm::Inner) return big_n * (tol * scale).square();
    return big_n * (tol * tol * scale).square();
  };
  const Tensor ok = positive(r.cxx - floor(v, true), "X", what, strict).index_select(0, ix) &
                    positive(r.cyy - floor(v, false), "Y", what, strict).index_select(0, iy);
  if (compare == Compare::Pearson) {
    return undefined_as_nan(r.cxy / (r.cxx.index_select(0, ix) * r.cyy.index_select(0, iy)).sqrt(), ok);
  }
  const Tensor mx = r.mean_x.index_select(0, ix), my = r.mean_y.index_select(0, iy);
  const Tensor num = r.cxy + big_n * mx * my;
  const Tensor den = ((r.cxx.index_select(0, ix) + big_n * mx.square()) *
                      (r.cyy.index_select(0, iy) + big_n * my.square()))
                         .sqrt();
  return undefined_as_nan(num / den, ok);
}

Tensor cca(const MomentsCore& m, CcaMethod method, int64_t k, double threshold, bool strict) {
  require_y(m, "cca");
  if (method == CcaMethod::Svcca && k <= 0 && !(threshold > 0 && threshold <= 1)) {
    C10_THROW_ERROR(ValueError, "svcca threshold must be in (0, 1], got " + std::to_string(threshold));
  }
  require_rows(m, 2, "CCA");
  const ViewState v = m.finalized(View::Raw);
  const Tensor &ix = m.pair_x(), &iy = m.pair_y();
  const double n = static_cast<double>(m.n()), error = covariance_error(m);
  const Whitening wx = whiten(v.xx.S, varies(v.x.mean, v.xx.S, n, m.eps(), "X", "CCA", strict), error, method, k,
                              threshold);
  const Whitening wy = whiten(v.yy.S, varies(v.y.mean, v.yy.S, n, m.eps(), "Y", "CCA", strict), error, method, k,
                              threshold);
  const auto okx = wx.ok.cpu(), oky = wy.ok.cpu();
  const int64_t pairs = ix.size(0);
  std::vector<Tensor> out;
  for (int64_t b = 0; b < pairs; ++b) {
    const int64_t lx = ix[b].item<int64_t>(), ly = iy[b].item<int64_t>();
    if (!okx[lx].item<bool>() || !oky[ly].item<bool>()) {
      out.push_back(at::full({}, std::numeric_limits<double>::quiet_NaN(), v.xy.S.options()));
      continue;
    }
    const Tensor mm = at::mm(at::mm(wx.w[lx].t(), v.xy.S[b]), wy.w[ly]);
    const int64_t kmin = std::min(wx.kept[lx].item<int64_t>(), wy.kept[ly].item<int64_t>());
    auto [u, rho, vh] = at::linalg_svd(mm, false);
    rho = rho.narrow(0, 0, kmin).clamp(0.0, 1.0);
    if (method != CcaMethod::Pwcca) {
      out.push_back(rho.mean());
      continue;
    }
    // PWCCA (Morcos et al. 2018): weight canonical correlation i by how much of X its
    // canonical variate h_i accounts for, sum_j |<h_i, x_j>| = |Sxx w_i| summed over
    // neurons, with Sxx w_i = V sqrt(lambda) u_i.
    const Tensor loadings = at::mm(wx.v[lx] * wx.root[lx].unsqueeze(0), u.narrow(1, 0, kmin));
    const Tensor alpha = loadings.abs().sum(0);
    out.push_back((alpha * rho).sum() / alpha.sum());
  }
  return at::stack(out);
}

Tensor procrustes(const MomentsCore& m, bool strict) {
  require_y(m, "procrustes");
  require_rows(m, 2, "Procrustes distance");
  const ViewState v = m.finalized(View::Raw);
  const double n = static_cast<double>(m.n());
  const Tensor tx = layer_traces(v.xx.S), ty = layer_traces(v.yy.S);
  const Tensor ok = varies(v.x.mean, v.xx.S, n, m.eps(), "X", "Procrustes", strict).index_select(0, m.pair_x()) &
                    varies(v.y.mean, v.yy.S, n, m.eps(), "Y", "Procrustes", strict).index_select(0, m.pair_y());
  const Tensor nuclear = at::linalg_svdvals(v.xy.S).sum(-1);
  const Tensor scale = (tx.index_select(0, m.pair_x()) * ty.index_select(0, m.pair_y())).sqrt();
  return undefined_as_nan((2 - 2 * nuclear / scale).clamp_min(0), ok);
}

std::map<std::string, Tensor> isotropy(const MomentsCore& m, Stream stream,
                                       int64_t top_k, bool strict) {
  if (stream == Stream::Y) require_y(m, "isotropy of Y");
  require_rows(m, 2, "isotropy");
  if (top_k < 1) C10_THROW_ERROR(ValueError, "top_k must be >= 1, got " + std::to_string(top_k));
  const ViewState v = m.finalized(View::Raw);
  const SideStack& side = stream == Stream::X ? v.x : v.y;
  const Tensor& s = stream == Stream::X ? v.xx.S : v.yy.S;
  const char* name = stream == Stream::X ? "X" : "Y";
  const double n = static_cast<double>(m.n());
  const int64_t d = s.size(-1);
  const Tensor var = s.diagonal(0, 1, 2) / (n - 1);  // [L, d]
  const Tensor ok = positive(layer_traces(s) / n - variance_floor(side.mean, s, n, m.eps()), name, "isotropy", strict);
  const int64_t zero = side.zero_rows.sum().item<int64_t>();
  if (zero > 0) {
    C10_THROW_ERROR(ValueError, std::string(name) + " has " + std::to_string(zero) +
                                " all-zero rows, so the mean cosine similarity is undefined. "
                                "Drop such rows (e.g. padding) first.");
  }
  std::map<std::string, Tensor> out;
  // Mean cosine similarity over pairs i != j: (||sum_i x_i/||x_i||||^2 - n) / (n(n-1)).
  out["mean_cosine"] = (side.unit_sum.square().sum(-1) - n) / (n * (n - 1));
  const Tensor lam = at::linalg_eigvalsh(s).clamp_min(0);
  const Tensor prob = lam / lam.sum(-1, true);
  const Tensor plogp = at::where(prob > 0, prob * prob.log(), at::zeros_like(prob));
  out["effective_rank"] = (-plogp.sum(-1)).exp();
  // Mean squared correlation between distinct non-constant dimensions (IsoBN).
  // A dimension counts as constant below the float32 rounding floor whatever the input
  // precision, so that float32 and float64 copies of the same activations agree (float32
  // cannot resolve a variance of 1e-17 next to row norms of order 1; float64 can).
  const double eps32 = static_cast<double>(std::numeric_limits<float>::epsilon());
  const Tensor floor = variance_floor(side.mean, s, n, std::max(m.eps(), eps32));
  const Tensor live = var * ((n - 1) / n) > floor.unsqueeze(-1);
  const Tensor inv_sd = at::where(live, var.clamp_min(1e-300).rsqrt(), at::zeros_like(var));
  const Tensor corr = s / (n - 1) * inv_sd.unsqueeze(2) * inv_sd.unsqueeze(1);
  const Tensor k = live.sum(-1).to(at::kDouble);
  out["mean_sq_dim_correlation"] =
      at::where(k > 1, (corr.square().sum({1, 2}) - k) / (k * (k - 1)).clamp_min(1),
                at::zeros_like(k));
  const int64_t kk = std::min(top_k, d);
  out["top_k_variance_share"] = std::get<0>(var.topk(kk, -1)).sum(-1) / var.sum(-1);
  out["dim_mean_abs_max"] = side.mean.abs().amax(-1);
  out["dim_mean_std"] = side.mean.std(-1, /*unbiased=*/false);
  // Undefined (NaN) where half or more of the dimensions are constant: n_constant_dims says so.
  const Tensor sd = at::where(live, var.sqrt(), at::zeros_like(var));
  const Tensor median = at::quantile(sd, 0.5, -1);
  out["dim_std_max_over_median"] = at::where(median > 0, sd.amax(-1) / median.clamp_min(1e-300),
                                             at::full_like(median, std::numeric_limits<double>::quiet_NaN()));
  for (auto& [key, values] : out) values = undefined_as_nan(values, ok);  // constant layers (not strict)
  out["n_constant_dims"] = (d - live.sum(-1)).to(at::kDouble);
  return out;
}

}  // namespace ftlens
