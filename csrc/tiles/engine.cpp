#include "tiles/engine.h"

#include "ops/dispatch.h"
#include "tiles/maps.h"
#ifdef FTLENS_WITH_CUDA
#include "tiles/cuda/launch_tiles.h"
#endif

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <c10/util/Exception.h>

namespace ftlens {

namespace {

using tiles::Bins;
using namespace tiles;  // the Map and Reducer constants

// A side's bins (and, for ranks, its per-bin tables) for the shared bin and rank functions.
Bins bins_of(const PairSide& s, const double* counts = nullptr, const double* base = nullptr) {
  Bins b;
  b.lo = s.lo, b.hi = s.hi, b.bins = s.bins, b.min = s.min, b.max = s.max;
  b.width = s.bins > 0 ? (s.hi - s.lo) / static_cast<double>(s.bins) : 1.0;
  b.counts = counts, b.base = base;
  return b;
}

void check_side(const at::Tensor& t, const PairSide& s, int64_t n) {
  if (t.dim() != 2) C10_THROW_ERROR(ValueError, s.name + " must be 2-D [rows, features]");
  if (t.size(0) != n) C10_THROW_ERROR(ValueError, "X and Y must have the same number of rows");
  if (!t.is_cpu() && !t.is_cuda())
    C10_THROW_ERROR(ValueError, s.name + " is on " + t.device().str() + ": the pairwise tiles run on CPU or CUDA");
  check_kernels_for(t, "pairwise tiles");  // a CUDA tensor and a build without the CUDA kernels
  if (s.column_mean.defined() && s.column_mean.numel() != t.size(1))
    C10_THROW_ERROR(ValueError, s.name + ": column_mean must have one value per column");
  if (s.map == kRbf && !(s.gamma > 0)) C10_THROW_ERROR(ValueError, s.name + ": rbf needs gamma > 0");
}

}  // namespace

PairEngine::PairEngine(at::Tensor x, at::Tensor y, PairSide sx, PairSide sy, tiles::Reducer reducer,
                       int64_t tile, bool double_precision)
    : x_(std::move(x)),
      y_(std::move(y)),
      sx_(std::move(sx)),
      sy_(std::move(sy)),
      reducer_(reducer),
      map_x_(sx_.map),
      map_y_(sy_.map),
      n_(x_.size(0)),
      tile_(tile),
      dtype_(double_precision ? at::kDouble : at::kFloat),
      two_sided_(y_.defined()),
      cuda_(x_.is_cuda()) {
  check_side(x_, sx_, n_);
  if (two_sided_) check_side(y_, sy_, n_);
  if (two_sided_ && y_.device() != x_.device())
    C10_THROW_ERROR(ValueError, "X and Y must be on the same device, got " + x_.device().str() + " and " +
                                y_.device().str());
  if ((reducer_ == kHsic || reducer_ == kPearson || reducer_ == kRanks) && !two_sided_)
    C10_THROW_ERROR(ValueError, reducer + " compares two sides: pass Y");
  if (tile_ < 1) C10_THROW_ERROR(ValueError, "tile must be >= 1");
  if (n_ < 2) C10_THROW_ERROR(ValueError, "need at least 2 rows for pairs, got " + std::to_string(n_));
  for (const PairSide* s : {&sx_, &sy_}) {
    if ((reducer_ == kHistogram || reducer_ == kRanks) && (s->bins < 1 || !(s->hi > s->lo)))
      C10_THROW_ERROR(ValueError, "histogram bins need bins >= 1 and hi > lo");
    if (reducer_ == kRanks && (!s->counts.defined() || s->counts.numel() != s->bins + 2))
      C10_THROW_ERROR(ValueError, "ranks need the histogram pass's counts [bins + 2]");
  }
  const auto doubles = at::TensorOptions().dtype(at::kDouble).device(x_.device());
  const auto longs = at::TensorOptions().dtype(at::kLong).device(x_.device());
  if (reducer_ == kHsic) {
    row_x_ = at::zeros({n_}, doubles), row_y_ = at::zeros({n_}, doubles);
    diag_x_ = at::zeros({n_}, doubles), diag_y_ = at::zeros({n_}, doubles);
  } else if (reducer_ == kCollect) {
    out_x_ = at::empty({n_ * (n_ - 1) / 2}, doubles);
    if (two_sided_) out_y_ = at::empty({n_ * (n_ - 1) / 2}, doubles);
  } else if (reducer_ == kRanks) {
    for (auto [s, base] : {std::pair{&sx_, &rank_base_x_}, std::pair{&sy_, &rank_base_y_}}) {
      s->counts = s->counts.to(at::kDouble).cpu().contiguous();
      const double* c = s->counts.data_ptr<double>();
      base->assign(s->bins + 2, 0.0);
      for (int64_t b = 1; b < s->bins + 2; ++b) (*base)[b] = (*base)[b - 1] + c[b - 1];
    }
  }
  if (cuda_) {
    const double inf = std::numeric_limits<double>::infinity();
    dev_sums_ = at::zeros({6}, doubles);
    dev_extremes_ = at::tensor({inf, -inf, inf, -inf}, at::kDouble).to(x_.device());
    dev_counters_ = at::zeros({4}, longs);
    if (reducer_ == kHistogram) {
      dev_counts_x_ = at::zeros({sx_.bins + 2}, longs);
      if (two_sided_) dev_counts_y_ = at::zeros({sy_.bins + 2}, longs);
    } else if (reducer_ == kRanks) {
      dev_rank_counts_x_ = sx_.counts.to(x_.device()), dev_rank_counts_y_ = sy_.counts.to(x_.device());
      dev_base_x_ = at::tensor(rank_base_x_, at::kDouble).to(x_.device());
      dev_base_y_ = at::tensor(rank_base_y_, at::kDouble).to(x_.device());
    } else if (reducer_ == kSelect) {
      if (sx_.capacity < 0 || sy_.capacity < 0) C10_THROW_ERROR(ValueError, "select capacity must be >= 0");
      out_x_ = at::empty({sx_.capacity}, doubles);
      if (two_sided_) out_y_ = at::empty({sy_.capacity}, doubles);
    }
  }
  ensure_threads();
}

void PairEngine::ensure_threads() {
  const int64_t threads = at::get_num_threads();
  if (threads <= threads_) return;
  threads_ = threads;
  const double inf = std::numeric_limits<double>::infinity();
  sums_.resize(threads, {0, 0, 0, 0, 0, 0});
  extremes_.resize(threads, {inf, -inf, inf, -inf});
  picked_x_.resize(threads), picked_y_.resize(threads);
  if (reducer_ == kHistogram) {
    hist_x_.resize(threads, std::vector<int64_t>(sx_.bins + 2, 0));
    if (two_sided_) hist_y_.resize(threads, std::vector<int64_t>(sy_.bins + 2, 0));
  }
  if (reducer_ == kHsic) column_x_.resize(threads), column_y_.resize(threads);
}

PairEngine::Block PairEngine::block(const at::Tensor& src, const PairSide& s, int64_t r0, int64_t r1) const {
  at::Tensor b = src.narrow(0, r0, r1 - r0).to(at::kDouble);  // prepared in float64, then cast
  at::Tensor bad = (~at::isfinite(b)).any(1).nonzero();
  if (bad.numel() > 0)
    C10_THROW_ERROR(ValueError, s.name + " row " + std::to_string(r0 + bad[0][0].item<int64_t>()) +
                                " holds NaN or Inf; remove or repair it first");
  if (s.column_mean.defined()) b = b - s.column_mean.to(at::kDouble);
  if (s.center_rows) b = b - b.mean(1, true);
  if (s.normalize_rows) {
    at::Tensor norm = b.norm(2, 1, true);
    at::Tensor zero = (norm.squeeze(1) == 0).nonzero();
    if (zero.numel() > 0)
      C10_THROW_ERROR(ValueError, s.name + " row " + std::to_string(r0 + zero[0][0].item<int64_t>()) +
                                  (s.center_rows ? " is constant" : " is all zeros") +
                                  ": its cosine with other rows is undefined; drop that row");
    b = b / norm;
  }
  b = b.to(dtype_).contiguous();
  return {b, (b * b).sum(1)};
}

template <typename T, typename F>
void PairEngine::for_pairs(const at::Tensor& gx, const at::Tensor& gy, const Block& xi, const Block& xj,
                           const Block& yi, const Block& yj, bool diagonal, F&& f) {
  const int64_t ti = gx.size(0), tj = gx.size(1);
  const T* gxp = gx.data_ptr<T>();
  const T* gyp = two_sided_ ? gy.data_ptr<T>() : nullptr;
  const T *axi = xi.norms.data_ptr<T>(), *axj = xj.norms.data_ptr<T>();
  const T* ayi = two_sided_ ? yi.norms.data_ptr<T>() : nullptr;
  const T* ayj = two_sided_ ? yj.norms.data_ptr<T>() : nullptr;
  const int mx = map_x_, my = map_y_;
  const T gamma_x = static_cast<T>(sx_.gamma), gamma_y = static_cast<T>(sy_.gamma);
  at::parallel_for(0, ti, 8, [&](int64_t begin, int64_t end) {
    const int tid = at::get_thread_num();
    for (int64_t a = begin; a < end; ++a) {
      const T* gxr = gxp + a * tj;
      const T* gyr = two_sided_ ? gyp + a * tj : nullptr;
      for (int64_t b = diagonal ? a : 0; b < tj; ++b) {
        const bool same = diagonal && a == b;
        const double vx = tiles::pair_value<T>(mx, gxr[b], axi[a], axj[b], gamma_x, same);
        const double vy = two_sided_ ? tiles::pair_value<T>(my, gyr[b], ayi[a], ayj[b], gamma_y, same) : 0.0;
        f(tid, a, b, same, vx, vy);
      }
    }
  });
}

template <typename T>
void PairEngine::reduce_tile(int64_t i0, int64_t j0, const at::Tensor& gx, const at::Tensor& gy, const Block& xi,
                             const Block& xj, const Block& yi, const Block& yj, bool diagonal) {
  const int64_t tj = gx.size(1);
  auto pairs = [&](auto&& f) { for_pairs<T>(gx, gy, xi, xj, yi, yj, diagonal, f); };
  switch (reducer_) {
    case kHsic: {
      // k and l shifted by constants (HSIC does not change); (i, j) and (j, i) both count
      for (int64_t t = 0; t < threads_; ++t) column_x_[t].assign(tj, 0.0), column_y_[t].assign(tj, 0.0);
      double *rx = row_x_.data_ptr<double>(), *ry = row_y_.data_ptr<double>();
      double *dx = diag_x_.data_ptr<double>(), *dy = diag_y_.data_ptr<double>();
      const double cx = sx_.shift, cy = sy_.shift;
      pairs([&](int tid, int64_t a, int64_t b, bool same, double vx, double vy) {
        const double k = vx - cx, l = vy - cy;
        if (same) {
          dx[i0 + a] = k, dy[i0 + a] = l;
          return;
        }
        auto& s = sums_[tid];
        s[0] += 2 * k * l, s[1] += 2 * k * k, s[2] += 2 * l * l;
        rx[i0 + a] += k, ry[i0 + a] += l;  // row a belongs to this thread alone
        column_x_[tid][b] += k, column_y_[tid][b] += l;
      });
      for (int64_t t = 0; t < threads_; ++t)
        for (int64_t b = 0; b < tj; ++b) rx[j0 + b] += column_x_[t][b], ry[j0 + b] += column_y_[t][b];
      break;
    }
    case kPearson: {
      const double cx = sx_.shift, cy = sy_.shift;
      pairs([&](int tid, int64_t, int64_t, bool same, double vx, double vy) {
        if (same) return;
        auto& s = sums_[tid];
        const double u = vx - cx, v = vy - cy;
        s[0] += u, s[1] += v, s[2] += u * u, s[3] += v * v, s[4] += u * v, s[5] += 1;
      });
      break;
    }
    case kRanks: {
      const Bins bx = bins_of(sx_, sx_.counts.data_ptr<double>(), rank_base_x_.data());
      const Bins by = bins_of(sy_, sy_.counts.data_ptr<double>(), rank_base_y_.data());
      const double mid = 0.5 * (static_cast<double>(n_) * (n_ - 1) / 2 + 1);  // the mean rank
      pairs([&](int tid, int64_t, int64_t, bool same, double vx, double vy) {
        if (same) return;
        auto& s = sums_[tid];
        const double u = tiles::rank_of(vx, bx) - mid, v = tiles::rank_of(vy, by) - mid;
        s[0] += u, s[1] += v, s[2] += u * u, s[3] += v * v, s[4] += u * v, s[5] += 1;
      });
      break;
    }
    case kHistogram: {
      const Bins bx = bins_of(sx_), by = bins_of(sy_);
      pairs([&](int tid, int64_t, int64_t, bool same, double vx, double vy) {
        if (same) return;
        auto& e = extremes_[tid];
        ++hist_x_[tid][tiles::bin_of(vx, bx)];
        e[0] = std::min(e[0], vx), e[1] = std::max(e[1], vx);
        if (two_sided_) {
          ++hist_y_[tid][tiles::bin_of(vy, by)];
          e[2] = std::min(e[2], vy), e[3] = std::max(e[3], vy);
        }
      });
      break;
    }
    case kCollect: {
      double* ox = out_x_.data_ptr<double>();
      double* oy = two_sided_ ? out_y_.data_ptr<double>() : nullptr;
      const int64_t n = n_;
      pairs([&](int, int64_t a, int64_t b, bool same, double vx, double vy) {
        if (same) return;
        const int64_t at = tiles::pair_index(i0 + a, j0 + b, n);
        ox[at] = vx;
        if (oy) oy[at] = vy;
      });
      break;
    }
    case kSelect: {
      pairs([&](int tid, int64_t, int64_t, bool same, double vx, double vy) {
        if (same) return;
        auto& s = sums_[tid];  // and how many lie below the range, so that ranks stay exact
        if (vx < sx_.select_lo) s[0] += 1;
        else if (vx < sx_.select_hi) picked_x_[tid].push_back(vx);
        if (!two_sided_) return;
        if (vy < sy_.select_lo) s[1] += 1;
        else if (vy < sy_.select_hi) picked_y_[tid].push_back(vy);
      });
      break;
    }
  }
}

void PairEngine::run_stripe(int64_t stripe) {
  RECORD_FUNCTION("ftlens::pair_stripe", {});
  if (stripe < 0 || stripe >= blocks())
    C10_THROW_ERROR(ValueError, "stripe " + std::to_string(stripe) + " out of range [0, " +
                                std::to_string(blocks()) + ")");
  ensure_threads();
  const int64_t i0 = stripe * tile_, i1 = std::min(n_, i0 + tile_);
  const Block xi = block(x_, sx_, i0, i1);
  const Block yi = two_sided_ ? block(y_, sy_, i0, i1) : Block{};
  for (int64_t j0 = i0; j0 < n_; j0 += tile_) {
    const int64_t j1 = std::min(n_, j0 + tile_);
    const bool diagonal = j0 == i0;
    const Block xj = diagonal ? xi : block(x_, sx_, j0, j1);
    const Block yj = !two_sided_ ? Block{} : diagonal ? yi : block(y_, sy_, j0, j1);
    const at::Tensor gx = at::mm(xi.rows, xj.rows.t());
    const at::Tensor gy = two_sided_ ? at::mm(yi.rows, yj.rows.t()) : at::Tensor();
    if (cuda_) {
      reduce_tile_cuda(i0, j0, gx, gy, xi, xj, yi, yj, diagonal);
    } else {
      AT_DISPATCH_FLOATING_TYPES(dtype_, "pair_tile",
                                 [&] { reduce_tile<scalar_t>(i0, j0, gx, gy, xi, xj, yi, yj, diagonal); });
    }
  }
}

void PairEngine::reduce_tile_cuda(int64_t i0, int64_t j0, const at::Tensor& gx, const at::Tensor& gy,
                                  const Block& xi, const Block& xj, const Block& yi, const Block& yj,
                                  bool diagonal) {
#ifdef FTLENS_WITH_CUDA
  const cuda::TileTensors t{gx,        gy,       xi.norms, xj.norms,  yi.norms,  yj.norms,  i0,        j0,
                            n_,        diagonal, map_x_,   map_y_,    sx_.gamma, sy_.gamma};
  switch (reducer_) {
    case kHsic:
      cuda::tile_hsic(t, sx_.shift, sy_.shift, dev_sums_, row_x_, row_y_, diag_x_, diag_y_);
      break;
    case kPearson:
      cuda::tile_pearson(t, sx_.shift, sy_.shift, false, bins_of(sx_), bins_of(sy_), dev_sums_);
      break;
    case kRanks: {
      const double mid = 0.5 * (static_cast<double>(n_) * (n_ - 1) / 2 + 1);
      cuda::tile_pearson(t, mid, mid, true,
                         bins_of(sx_, dev_rank_counts_x_.data_ptr<double>(), dev_base_x_.data_ptr<double>()),
                         bins_of(sy_, dev_rank_counts_y_.data_ptr<double>(), dev_base_y_.data_ptr<double>()),
                         dev_sums_);
      break;
    }
    case kHistogram:
      cuda::tile_histogram(t, bins_of(sx_), bins_of(sy_), dev_counts_x_, dev_counts_y_, dev_extremes_);
      break;
    case kCollect:
      cuda::tile_collect(t, out_x_, out_y_);
      break;
    case kSelect:
      cuda::tile_select(t, sx_.select_lo, sx_.select_hi, sy_.select_lo, sy_.select_hi, out_x_, out_y_,
                        dev_counters_);
      break;
  }
#else
  check_kernels_for(gx, "pairwise tiles");
#endif
}

std::array<double, 6> PairEngine::total_sums() const {
  std::array<double, 6> s{0, 0, 0, 0, 0, 0};
  if (cuda_) {
    const at::Tensor host = dev_sums_.cpu();
    for (size_t k = 0; k < 6; ++k) s[k] = host[k].item<double>();
    return s;
  }
  for (const auto& part : sums_)
    for (size_t k = 0; k < 6; ++k) s[k] += part[k];
  return s;
}

std::map<std::string, at::Tensor> PairEngine::result() const {
  std::map<std::string, at::Tensor> out;
  auto scalar = [](double v) { return at::scalar_tensor(v, at::kDouble); };
  const std::array<double, 6> s = total_sums();
  switch (reducer_) {
    case kHsic:
      out["kl"] = scalar(s[0]), out["kk"] = scalar(s[1]), out["ll"] = scalar(s[2]);
      out["row_x"] = row_x_.cpu().clone(), out["row_y"] = row_y_.cpu().clone();
      out["diag_x"] = diag_x_.cpu().clone(), out["diag_y"] = diag_y_.cpu().clone();
      break;
    case kPearson:
    case kRanks:
      out["sx"] = scalar(s[0]), out["sy"] = scalar(s[1]), out["sxx"] = scalar(s[2]);
      out["syy"] = scalar(s[3]), out["sxy"] = scalar(s[4]), out["count"] = scalar(s[5]);
      break;
    case kHistogram: {
      const double inf = std::numeric_limits<double>::infinity();
      double e[4] = {inf, -inf, inf, -inf};
      if (cuda_) {
        const at::Tensor host = dev_extremes_.cpu();
        for (int k = 0; k < 4; ++k) e[k] = host[k].item<double>();
      }
      for (const auto& part : extremes_)
        e[0] = std::min(e[0], part[0]), e[1] = std::max(e[1], part[1]), e[2] = std::min(e[2], part[2]),
        e[3] = std::max(e[3], part[3]);
      auto total = [&](const std::vector<std::vector<int64_t>>& parts, const at::Tensor& device, int64_t bins) {
        if (cuda_) return device.cpu();
        at::Tensor t = at::zeros({bins + 2}, at::kLong);
        int64_t* p = t.data_ptr<int64_t>();
        for (const auto& part : parts)
          for (int64_t b = 0; b < bins + 2; ++b) p[b] += part[b];
        return t;
      };
      out["counts_x"] = total(hist_x_, dev_counts_x_, sx_.bins);
      out["min_x"] = scalar(e[0]), out["max_x"] = scalar(e[1]);
      if (two_sided_) {
        out["counts_y"] = total(hist_y_, dev_counts_y_, sy_.bins);
        out["min_y"] = scalar(e[2]), out["max_y"] = scalar(e[3]);
      }
      break;
    }
    case kCollect:
      out["x"] = out_x_.cpu();
      if (two_sided_) out["y"] = out_y_.cpu();
      break;
    case kSelect: {
      if (cuda_) {
        const at::Tensor counters = dev_counters_.cpu();
        for (int side = 0; side < (two_sided_ ? 2 : 1); ++side) {
          const int64_t kept = counters[side].item<int64_t>();
          const at::Tensor& values = side == 0 ? out_x_ : out_y_;
          if (kept > values.numel())
            throw std::runtime_error("select found " + std::to_string(kept) + " values where the histogram pass " +
                                     "counted " + std::to_string(values.numel()));
          out[side == 0 ? "x" : "y"] = values.narrow(0, 0, kept).cpu();
          out[side == 0 ? "below_x" : "below_y"] = scalar(static_cast<double>(counters[2 + side].item<int64_t>()));
        }
        break;
      }
      auto join = [](const std::vector<std::vector<double>>& parts) {
        std::vector<double> all;
        for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
        return at::tensor(all, at::kDouble);
      };
      out["x"] = join(picked_x_), out["below_x"] = scalar(s[0]);
      if (two_sided_) out["y"] = join(picked_y_), out["below_y"] = scalar(s[1]);
      break;
    }
  }
  return out;
}

}  // namespace ftlens
