#include "moments.h"

#include <algorithm>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "rowops.h"

namespace ftlens {
namespace {

using at::Tensor;

Tensor rowdot(const Tensor& a, const Tensor& b) { return (a * b).sum(-1); }

Tensor bmv(const Tensor& m, const Tensor& v) { return at::bmm(m, v.unsqueeze(-1)).squeeze(-1); }

Tensor col(const Tensor& v) { return v.unsqueeze(-1); }

// a^T a per layer for a: [L, m, d] -> [L, d, d], from the upper triangle only: panels of
// columns, each one GEMM against the columns from its own onward, mirrored below the
// diagonal. About a third fewer flops than the full product (a BLAS syrk, which torch does
// not expose); below a few hundred columns the narrow GEMMs would lose more than that.
Tensor symmetric_gram(const Tensor& a) {
  constexpr int64_t kPanels = 4, kMinDim = 256;
  const int64_t d = a.size(2);
  const Tensor a_t = a.transpose(1, 2);
  if (d < kMinDim) return at::bmm(a_t, a);
  Tensor out = at::empty({a.size(0), d, d}, a.options());
  for (int64_t i = 0; i < kPanels; ++i) {
    const int64_t lo = i * d / kPanels, width = (i + 1) * d / kPanels - lo;
    const Tensor strip = at::bmm(a_t.narrow(1, lo, width), a.narrow(2, lo, d - lo));  // [L, w, d - lo]
    out.narrow(1, lo, width).narrow(2, lo, d - lo).copy_(strip);
    const int64_t below = d - lo - width;
    if (below > 0) {
      out.narrow(1, lo + width, below).narrow(2, lo, width).copy_(strip.narrow(2, width, below).transpose(1, 2));
    }
  }
  return out;
}

// Every tensor of a view, by name (q == 0: the X side only).
std::vector<std::pair<std::string, Tensor*>> fields(ViewState& v, bool with_y) {
  std::vector<std::pair<std::string, Tensor*>> out;
  auto side = [&](const std::string& name, SideStack& s) {
    out.push_back({name + ".mean", &s.mean});
    out.push_back({name + ".shift", &s.shift});
    out.push_back({name + ".a1", &s.a1});
    out.push_back({name + ".unit_sum", &s.unit_sum});
    out.push_back({name + ".zero_rows", &s.zero_rows});
  };
  auto cross = [&](const std::string& name, CrossStack& c) {
    out.push_back({name + ".S", &c.S});
    out.push_back({name + ".ab", &c.ab});
    out.push_back({name + ".xb", &c.xb});
    out.push_back({name + ".ya", &c.ya});
  };
  side("x", v.x);
  cross("xx", v.xx);
  if (with_y) {
    side("y", v.y);
    cross("yy", v.yy);
    cross("xy", v.xy);
  }
  return out;
}

// Moves the row-norm statistics of cross blocks from the sides' current shifts to
// shifts moved by sx (X layers) and sy (Y layers); x, y still hold the old shifts.
void rebase_cross(CrossStack& c, const SideStack& x, const SideStack& y, const Tensor& ix,
                  const Tensor& iy, const Tensor& sx, const Tensor& sy, double n,
                  bool own_block) {
  const Tensor s = sx.index_select(0, ix), t = sy.index_select(0, iy);
  const Tensor dx = (x.mean - x.shift).index_select(0, ix);
  const Tensor dy = (y.mean - y.shift).index_select(0, iy);
  const Tensor a1 = x.a1.index_select(0, ix), b1 = y.a1.index_select(0, iy);
  const Tensor u1 = dx * n, v1 = dy * n;  // sums of the rows about the old shifts
  // M = sum_i u_i v_i^T = S + n dx dy^T, applied to t and (transposed) to s.
  const Tensor mt = c.times(t) + n * dx * col(rowdot(dy, t));
  const Tensor mts = own_block ? mt : c.transposed_times(s) + n * dy * col(rowdot(dx, s));
  const Tensor ss = rowdot(s, s), tt = rowdot(t, t), su = rowdot(s, u1), tv = rowdot(t, v1);
  Tensor ab = c.ab - 2 * rowdot(t, c.ya) + tt * a1 - 2 * rowdot(s, c.xb) + 4 * rowdot(s, mt) -
              2 * tt * su + ss * b1 - 2 * ss * tv + n * ss * tt;
  Tensor xb = c.xb - 2 * mt + col(tt) * u1 - s * col(b1) + 2 * s * col(tv) - n * col(tt) * s;
  Tensor ya = c.ya - 2 * mts + col(ss) * v1 - t * col(a1) + 2 * t * col(su) - n * col(ss) * t;
  c.ab = ab;
  c.xb = xb;
  c.ya = ya;
}

void rebase_side(SideStack& x, const Tensor& s, const Tensor& new_shift, double n) {
  const Tensor u1 = (x.mean - x.shift) * n;
  x.a1 = x.a1 - 2 * rowdot(s, u1) + n * rowdot(s, s);
  x.shift = new_shift.clone();
}

// Re-expresses a view's row-norm statistics about new shifts (exact algebra).
void rebase_view(ViewState& v, const Tensor& own, const Tensor& ix, const Tensor& iy,
                 const Tensor& new_x, const Tensor& new_y, double n, bool with_y) {
  const Tensor sx = new_x - v.x.shift;
  rebase_cross(v.xx, v.x, v.x, own, own, sx, sx, n, true);
  if (with_y) {
    const Tensor sy = new_y - v.y.shift;
    rebase_cross(v.yy, v.y, v.y, own, own, sy, sy, n, true);
    rebase_cross(v.xy, v.x, v.y, ix, iy, sx, sy, n, false);
    rebase_side(v.y, sy, new_y, n);
  }
  rebase_side(v.x, sx, new_x, n);
}

double unit_roundoff(at::ScalarType t) {
  return t == at::kDouble ? std::numeric_limits<double>::epsilon()
                          : static_cast<double>(std::numeric_limits<float>::epsilon());
}

// Raises a ValueError naming the stream, layer, row and chunk of the first NaN/Inf.
void check_finite(const Tensor& sums, const Tensor& rows, const char* stream,
                  const char* view, int64_t rows_before, int64_t chunk) {
  const Tensor ok = at::isfinite(sums).all(1);
  if (ok.all().item<bool>()) return;
  const int64_t layer = (~ok).nonzero()[0][0].item<int64_t>();
  const Tensor bad = (~at::isfinite(rows[layer])).any(1).nonzero();
  std::ostringstream msg;
  msg << stream << " contains NaN or Inf at layer " << layer;
  if (bad.numel() > 0) {
    const int64_t row = bad[0][0].item<int64_t>();
    msg << ", row " << rows_before + row << " (row " << row << " of chunk " << chunk << ")";
  } else {
    msg << " in chunk " << chunk << " (its values overflow the " << view << " sums)";
  }
  msg << ". Remove or impute non-finite values (e.g. from fp16 overflow) before accumulating.";
  throw std::invalid_argument(msg.str());
}

}  // namespace

Tensor CrossStack::times(const Tensor& t) const {
  Tensor out = bmv(S, t.to(S.scalar_type())).to(at::kDouble);
  return lazy() ? out - rows * rx * col(rowdot(ry, t)) : out;
}

Tensor CrossStack::transposed_times(const Tensor& s) const {
  Tensor out = bmv(S.transpose(1, 2), s.to(S.scalar_type())).to(at::kDouble);
  return lazy() ? out - rows * ry * col(rowdot(rx, s)) : out;
}

Tensor CrossStack::dense() const {
  Tensor out = S.to(at::kDouble);
  if (lazy()) out = out.baddbmm(col(rx), ry.unsqueeze(1), 1.0, -rows);
  return out;
}

View parse_view(const std::string& name) {
  if (name == "raw") return View::Raw;
  if (name == "cosine") return View::Cosine;
  if (name == "correlation") return View::Correlation;
  throw std::invalid_argument("unknown view '" + name +
                              "': expected 'raw', 'cosine' or 'correlation'");
}

std::string view_name(View view) {
  switch (view) {
    case View::Raw:
      return "raw";
    case View::Cosine:
      return "cosine";
    case View::Correlation:
      return "correlation";
  }
  return "raw";
}

MomentsCore::MomentsCore(int64_t layers, int64_t p, int64_t q, const std::string& pairs,
                         const std::vector<std::string>& views)
    : layers_(layers), p_(p), q_(q), pairs_(pairs) {
  if (layers < 1) throw std::invalid_argument("n_layers must be >= 1, got " + std::to_string(layers));
  if (p < 1) throw std::invalid_argument("p (columns of X) must be >= 1, got " + std::to_string(p));
  if (q < 0) throw std::invalid_argument("q (columns of Y) must be >= 0, got " + std::to_string(q));
  if (pairs != "diagonal" && pairs != "all") {
    throw std::invalid_argument("pairs must be 'diagonal' or 'all', got '" + pairs + "'");
  }
  if (views.empty()) throw std::invalid_argument("at least one view is needed");
  for (const auto& v : views) {
    const View parsed = parse_view(v);
    if (std::find(views_.begin(), views_.end(), parsed) == views_.end()) views_.push_back(parsed);
  }
  const auto idx = at::TensorOptions().dtype(at::kLong);
  own_ = at::arange(layers, idx);
  if (pairs == "diagonal") {
    ix_ = at::arange(layers, idx);
    iy_ = ix_.clone();
  } else {
    ix_ = at::arange(layers, idx).repeat_interleave(layers);
    iy_ = at::arange(layers, idx).repeat(layers);
  }
  reset();
}

std::vector<std::string> MomentsCore::view_names() const {
  std::vector<std::string> out;
  for (View v : views_) out.push_back(view_name(v));
  return out;
}

bool MomentsCore::has_view(View view) const {
  return std::find(views_.begin(), views_.end(), view) != views_.end();
}

ViewState MomentsCore::empty_view(const at::TensorOptions& opts) const {
  const int64_t pairs = ix_.size(0);
  auto side = [&](int64_t d) {
    return SideStack{at::zeros({layers_, d}, opts), at::zeros({layers_, d}, opts),
                     at::zeros({layers_}, opts), at::zeros({layers_, d}, opts),
                     at::zeros({layers_}, opts.dtype(at::kLong))};
  };
  auto cross = [&](int64_t blocks, int64_t a, int64_t b) {
    return CrossStack{at::zeros({blocks, a, b}, opts), at::zeros({blocks}, opts),
                      at::zeros({blocks, a}, opts), at::zeros({blocks, b}, opts)};
  };
  ViewState v;
  v.x = side(p_);
  v.xx = cross(layers_, p_, p_);
  if (q_ > 0) {
    v.y = side(q_);
    v.yy = cross(layers_, q_, q_);
    v.xy = cross(pairs, p_, q_);
  }
  return v;
}

void MomentsCore::reset() {
  const auto opts = at::TensorOptions().dtype(at::kDouble).device(ix_.device());
  state_.clear();
  for (size_t i = 0; i < views_.size(); ++i) state_.push_back(empty_view(opts));
  n_ = 0;
  chunks_ = 0;
  eps_ = 0.0;
  scratch_.clear();  // also frees the chunk-sized working buffers
}

void MomentsCore::to_device(const at::Device& device) {
  if (ix_.device() == device) return;
  ix_ = ix_.to(device);
  iy_ = iy_.to(device);
  own_ = own_.to(device);
  for (auto& v : state_) {
    for (auto& f : fields(v, q_ > 0)) *f.second = f.second->to(device);
  }
}

// Co-moment blocks a^T b of centered rows, as float32 GEMMs where the rows are float64
// unit rows of a float32 input. Unit rows that crowd around one direction h make
// t_i = mu.e_i a second-order quantity, which float32 rounding of e_i would swamp; so the
// components along each side's h are taken exactly from float64 sums (ga = sum_i wb_i a_i,
// gb = sum_i wa_i b_i, wab = sum_i wa_i wb_i with w = rows.h) and only the orthogonal
// part P_a (a^T b) P_b comes from the float32 GEMM.
Tensor along_direction_exact(Tensor s32, const Tensor& ha, const Tensor& hb, const Tensor& ga,
                             const Tensor& gb, const Tensor& wab) {
  auto project = [](const Tensor& v, const Tensor& h) { return v - h * col(rowdot(h, v)); };
  const Tensor sh = bmv(s32, hb);                                 // [B, p]: S hb
  const Tensor hs = bmv(s32.transpose(1, 2), ha);                 // [B, q]: S^T ha
  const Tensor hsh = rowdot(ha, sh);                              // [B]
  // S - ha hs^T - sh hb^T + hsh ha hb^T + ga' hb^T + ha gb'^T + wab ha hb^T as one rank-2
  // update: S + ha (gb' - hs + (hsh + wab) hb)^T + (ga' - sh) hb^T.
  const Tensor u = at::stack({ha, project(ga, ha) - sh}, 2);                                // [B, p, 2]
  const Tensor v = at::stack({project(gb, hb) - hs + col(hsh + wab) * hb, hb}, 1);          // [B, 2, q]
  return s32.baddbmm_(u, v);  // s32: the caller's float64 temporary
}

Tensor MomentsCore::scratch(const std::string& key, at::IntArrayRef sizes,
                            const at::TensorOptions& opts) const {
  const int64_t numel = c10::multiply_integers(sizes);
  Tensor& flat = scratch_[key];
  if (!flat.defined() || flat.numel() < numel || flat.scalar_type() != opts.dtype().toScalarType() ||
      flat.device() != opts.device()) {
    flat = at::empty({numel}, opts);
  }
  return flat.narrow(0, 0, numel).view(sizes);
}

ViewState MomentsCore::chunk_view(const Tensor& xs, const Tensor& ys, at::ScalarType dtype,
                                  const char* view) const {
  const int64_t m = xs.size(1);
  const bool with_y = q_ > 0;
  const bool all = pairs_ == "all";
  // float64 unit rows of a float32 input: float32 GEMMs plus exact sums along h.
  const bool split = xs.scalar_type() == at::kDouble && dtype == at::kFloat;
  struct Centered {
    SideStack side;
    Tensor rows, alpha, inv, r, h, w;
    Tensor lo;  // rows in the GEMM dtype
    const char* stream = "";
  };
  auto center = [&](const Tensor& rows, const char* stream) {
    Centered c;
    c.stream = stream;
    const Tensor sums = column_sums(rows);
    check_finite(sums, rows, stream, view, n_, chunks_);
    c.side.mean = sums / static_cast<double>(m);
    // A nearby mean, exactly representable in the rows' dtype.
    const Tensor shift = c.side.mean.to(rows.scalar_type());
    const Tensor buffer = scratch(std::string("center ") + view + stream, rows.sizes(), rows.options());
    std::tie(c.rows, c.alpha, c.inv) = center_rows(rows, shift, rows.scalar_type(), buffer);
    c.side.shift = shift.to(at::kDouble);
    c.side.a1 = c.alpha.sum(1);
    c.side.zero_rows = (c.inv == 0).sum(1);
    c.r = c.side.mean - c.side.shift;  // residual mean of the centered rows
    if (split) {
      const Tensor norm = c.side.mean.norm(2, -1, true).clamp_min(1e-300);
      c.h = c.side.mean / norm;
      c.w = at::bmm(c.rows, col(c.h)).squeeze(-1);  // [L, m]
    }
    return c;
  };
  Centered cx = center(xs, "X");
  Centered cy;
  if (with_y) cy = center(ys, "Y");

  // One skinny GEMM per side gives sum_i v_i x~_i for every weight column v: the side's
  // own alpha, 1/||x_i|| (and w), then the partner's alphas (and ws) for the cross blocks.
  const int64_t partner_cols = all ? layers_ : 1;
  auto weighted_sums = [&](const Centered& c, const Centered* partner) {
    std::vector<Tensor> cols = {c.alpha, c.inv};
    if (split) cols.push_back(c.w);
    auto add_partner = [&](const Tensor& v) {
      if (!all) {
        cols.push_back(v);
        return;
      }
      for (int64_t l = 0; l < layers_; ++l) cols.push_back(v[l].unsqueeze(0).expand({layers_, m}));
    };
    if (partner != nullptr) {
      add_partner(partner->alpha);
      if (split) add_partner(partner->w);
    }
    // (w^T rows)^T: a short-and-wide GEMM runs several times faster than rows^T w.
    const Tensor w = at::stack(cols, 1).to(c.rows.scalar_type());  // [L, k, m]
    return at::bmm(w, c.rows).transpose(1, 2).to(at::kDouble);      // [L, d, k]
  };
  const int64_t base = split ? 3 : 2;
  // Rows in the GEMM dtype, converted once per side (each feeds its own and the cross block).
  auto in_dtype = [&](Centered& c) -> const Tensor& {
    if (c.lo.defined()) return c.lo;
    if (c.rows.scalar_type() == dtype) {
      c.lo = c.rows;
    } else {
      c.lo = scratch(std::string("gemm ") + view + c.stream, c.rows.sizes(), c.rows.options().dtype(dtype));
      c.lo.copy_(c.rows);
    }
    return c.lo;
  };
  auto gemm = [&](Centered& a, Centered& b) {  // a^T b per layer, in dtype
    return at::bmm(in_dtype(a).transpose(1, 2), in_dtype(b));
  };
  auto own_block = [&](Centered& c, const Tensor& w) {
    CrossStack b;
    b.S = symmetric_gram(in_dtype(c));
    if (split) {
      const Tensor g = w.select(2, 2);
      b.S = along_direction_exact(b.S.to(at::kDouble), c.h, c.h, g, g, c.w.square().sum(1));
    }
    b.rx = c.r;
    b.ry = c.r;
    b.rows = static_cast<double>(m);
    b.ab = (c.alpha * c.alpha).sum(1);
    b.xb = w.select(2, 0).contiguous();
    b.ya = b.xb;
    c.side.unit_sum = w.select(2, 1) + c.side.shift * col(c.inv.sum(1));
    return b;
  };

  ViewState v;
  const Tensor wx = weighted_sums(cx, with_y ? &cy : nullptr);
  v.xx = own_block(cx, wx);
  v.x = cx.side;
  if (!with_y) return v;
  const Tensor wy = weighted_sums(cy, &cx);
  v.yy = own_block(cy, wy);
  v.y = cy.side;

  // Partner columns of the weighted sums, as [P, d] per compared pair.
  auto partner_sums = [&](const Tensor& w, int64_t offset, bool x_side) {
    const Tensor block = w.narrow(2, offset, partner_cols);  // [L, d, partner_cols]
    if (!all) return block.squeeze(-1).contiguous();
    // x side: w[lx, :, ly] -> pair lx*L + ly; y side: w[ly, :, lx] -> pair lx*L + ly.
    return x_side ? block.permute({0, 2, 1}).reshape({-1, block.size(1)})
                  : block.permute({2, 0, 1}).reshape({-1, block.size(1)});
  };
  CrossStack& c = v.xy;
  if (!all) {
    c.S = gemm(cx, cy);
  } else {
    // Y's layers side by side: one [p, L*q] GEMM per X layer.
    const Tensor ycat = in_dtype(cy).transpose(0, 1).reshape({m, layers_ * q_});
    std::vector<Tensor> blocks;
    for (int64_t l = 0; l < layers_; ++l) {
      blocks.push_back(at::mm(in_dtype(cx)[l].t(), ycat).view({p_, layers_, q_}).transpose(0, 1));
    }
    c.S = at::cat(blocks, 0);  // [(lx, ly), p, q]
  }
  c.xb = partner_sums(wx, base, true);
  c.ya = partner_sums(wy, base, false);
  if (split) {
    const Tensor wab = (cx.w.index_select(0, ix_) * cy.w.index_select(0, iy_)).sum(1);
    c.S = along_direction_exact(c.S.to(at::kDouble), cx.h.index_select(0, ix_), cy.h.index_select(0, iy_),
                                partner_sums(wx, base + partner_cols, true),
                                partner_sums(wy, base + partner_cols, false), wab);
  }
  c.rx = cx.r.index_select(0, ix_);
  c.ry = cy.r.index_select(0, iy_);
  c.rows = static_cast<double>(m);
  c.ab = (cx.alpha.index_select(0, ix_) * cy.alpha.index_select(0, iy_)).sum(1);
  return v;
}

void MomentsCore::merge_view(ViewState& into, const ViewState& other, int64_t n_other) const {
  const bool with_y = q_ > 0;
  if (n_other == 0) return;
  if (n_ == 0) {
    into = other;
    for (CrossStack* c : {&into.xx, &into.yy, &into.xy}) {
      if (!c->S.defined()) continue;
      c->S = c->lazy() ? c->dense() : c->S.clone();  // private: state is updated in place
      c->rx = c->ry = Tensor();
    }
    return;
  }
  ViewState o = other;  // handles only: rebase assigns new tensors
  rebase_view(o, own_, ix_, iy_, into.x.shift, with_y ? into.y.shift : Tensor(),
              static_cast<double>(n_other), with_y);
  const double n1 = static_cast<double>(n_), n2 = static_cast<double>(n_other);
  const double w = n1 * n2 / (n1 + n2);
  auto add_cross = [&](CrossStack& a, const CrossStack& b, const Tensor& dx, const Tensor& dy) {
    // Chan: S += S_b + n1 n2 / n * dx dy^T, with b's own centering term in the same
    // rank-two update; S_b may be float32 (added in place with promotion).
    add_into(a.S, b.S);
    if (b.lazy()) {
      a.S.baddbmm_(at::stack({dx * w, b.rx * -b.rows}, -1), at::stack({dy, b.ry}, 1));
    } else {
      a.S.baddbmm_(col(dx), dy.unsqueeze(1), 1.0, w);
    }
    a.ab = a.ab + b.ab;
    a.xb = a.xb + b.xb;
    a.ya = a.ya + b.ya;
  };
  auto add_side = [&](SideStack& a, const SideStack& b, const Tensor& delta) {
    a.mean = a.mean + delta * (n2 / (n1 + n2));
    a.a1 = a.a1 + b.a1;
    a.unit_sum = a.unit_sum + b.unit_sum;
    a.zero_rows = a.zero_rows + b.zero_rows;
  };
  const Tensor dx = o.x.mean - into.x.mean;
  add_cross(into.xx, o.xx, dx, dx);
  if (with_y) {
    const Tensor dy = o.y.mean - into.y.mean;
    add_cross(into.yy, o.yy, dy, dy);
    add_cross(into.xy, o.xy, dx.index_select(0, ix_), dy.index_select(0, iy_));
    add_side(into.y, o.y, dy);
  }
  add_side(into.x, o.x, dx);
}

void MomentsCore::update(const Tensor& xs, const Tensor& ys) {
  auto check_stack = [&](const Tensor& t, const char* name, int64_t d) {
    if (t.dim() != 3 || t.size(0) != layers_ || t.size(2) != d) {
      std::ostringstream msg;
      msg << name << " must be [" << layers_ << ", rows, " << d << "], got " << t.sizes();
      throw std::invalid_argument(msg.str());
    }
    if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble) {
      throw std::invalid_argument(std::string(name) + " must be float32 or float64");
    }
  };
  check_stack(xs, "X", p_);
  check_kernels_for(xs, "Moments.update");
  if (q_ > 0) {
    if (!ys.defined()) throw std::invalid_argument("Y is required: these moments have q > 0");
    check_stack(ys, "Y", q_);
    if (ys.size(1) != xs.size(1)) {
      throw std::invalid_argument("X and Y must have the same number of rows, got " +
                                  std::to_string(xs.size(1)) + " and " +
                                  std::to_string(ys.size(1)));
    }
    if (ys.scalar_type() != xs.scalar_type() || ys.device() != xs.device()) {
      throw std::invalid_argument("X and Y must share dtype and device");
    }
  }
  const int64_t m = xs.size(1);
  if (m == 0) return;
  to_device(xs.device());
  std::vector<ViewState> chunks;
  for (View view : views_) {
    Tensor x = xs.contiguous(), y = q_ > 0 ? ys.contiguous() : Tensor();
    if (view != View::Raw) {
      const bool center = view == View::Correlation;
      const std::string name = view_name(view);
      auto unit = [&](const Tensor& rows, const char* stream) {
        const Tensor buffer = scratch(std::string("unit ") + name + stream, rows.sizes(),
                                      rows.options().dtype(at::kDouble));
        auto [out, zero] = normalize_rows(rows, center, buffer);
        if (zero.sum().item<int64_t>() == 0) return out;
        const int64_t layer = zero.nonzero()[0][0].item<int64_t>();
        const int64_t row = (out[layer].abs().sum(1) == 0).nonzero()[0][0].item<int64_t>();
        std::ostringstream msg;
        msg << stream << " row " << n_ + row << " (row " << row << " of chunk " << chunks_
            << ") at layer " << layer << " has zero norm"
            << (center ? " after subtracting its mean (a constant row)" : "")
            << ", so its " << name << " RDM entries are undefined. Drop such rows (e.g. "
            << "padding) or leave '" << name << "' out of the requested RDMs.";
        throw std::invalid_argument(msg.str());
      };
      x = unit(x, "X");
      if (q_ > 0) y = unit(y, "Y");
    }
    chunks.push_back(chunk_view(x, y, xs.scalar_type(), view_name(view).c_str()));
  }
  for (size_t i = 0; i < views_.size(); ++i) merge_view(state_[i], chunks[i], m);
  eps_ = std::max(eps_, unit_roundoff(xs.scalar_type()));
  n_ += m;
  chunks_ += 1;
}

void MomentsCore::merge(const MomentsCore& other) {
  auto fail = [&](const std::string& what, const std::string& mine, const std::string& theirs) {
    throw std::invalid_argument("cannot merge moments with different " + what + ": this has " +
                                mine + ", other has " + theirs +
                                ". Merge only accumulators built with the same arguments.");
  };
  if (other.layers_ != layers_)
    fail("n_layers", std::to_string(layers_), std::to_string(other.layers_));
  if (other.p_ != p_) fail("p", std::to_string(p_), std::to_string(other.p_));
  if (other.q_ != q_) fail("q", std::to_string(q_), std::to_string(other.q_));
  if (other.pairs_ != pairs_) fail("pairs", pairs_, other.pairs_);
  if (other.views_ != views_) fail("views (rdms)", "[" + [&] {
      std::string s;
      for (auto& v : view_names()) s += v + " ";
      return s;
    }() + "]", "[" + [&] {
      std::string s;
      for (auto& v : other.view_names()) s += v + " ";
      return s;
    }() + "]");
  if (other.n_ == 0) return;
  const at::Device device = n_ > 0 ? ix_.device() : other.ix_.device();
  to_device(device);
  for (size_t i = 0; i < views_.size(); ++i) {
    ViewState o = other.state_[i];
    for (auto& f : fields(o, q_ > 0)) *f.second = f.second->to(device);
    merge_view(state_[i], o, other.n_);
  }
  n_ += other.n_;
  chunks_ += other.chunks_;
  eps_ = std::max(eps_, other.eps_);
}

ViewState MomentsCore::finalized(View view) const {
  const auto it = std::find(views_.begin(), views_.end(), view);
  if (it == views_.end()) {
    throw std::invalid_argument("the '" + view_name(view) +
                                "' view was not accumulated: create the moments with it "
                                "among the requested rdms");
  }
  ViewState v = state_[it - views_.begin()];
  rebase_view(v, own_, ix_, iy_, v.x.mean, q_ > 0 ? v.y.mean : Tensor(),
              static_cast<double>(n_), q_ > 0);
  return v;
}

std::map<std::string, Tensor> MomentsCore::state_dict() const {
  std::map<std::string, Tensor> out;
  const auto cpu_long = at::TensorOptions().dtype(at::kLong);
  out["n"] = at::tensor({n_}, cpu_long);
  out["chunks"] = at::tensor({chunks_}, cpu_long);
  out["eps"] = at::tensor({eps_}, at::TensorOptions().dtype(at::kDouble));
  for (size_t i = 0; i < views_.size(); ++i) {
    ViewState v = state_[i];
    for (auto& f : fields(v, q_ > 0)) {
      out[view_name(views_[i]) + "." + f.first] = f.second->detach().cpu().clone();
    }
  }
  return out;
}

void MomentsCore::load_state_dict(const std::map<std::string, Tensor>& state) {
  const auto opts = at::TensorOptions().dtype(at::kDouble).device(ix_.device());
  std::vector<ViewState> loaded;
  size_t used = 0;
  auto take = [&](const std::string& key) -> const Tensor& {
    const auto it = state.find(key);
    if (it == state.end()) {
      throw std::invalid_argument("state dict does not fit these moments: key '" + key +
                                  "' is missing (was it saved from moments with the same "
                                  "n_layers, p, q, pairs and rdms?)");
    }
    ++used;
    return it->second;
  };
  for (View view : views_) {
    ViewState v = empty_view(opts);
    for (auto& f : fields(v, q_ > 0)) {
      const std::string key = view_name(view) + "." + f.first;
      const Tensor& t = take(key);
      if (t.sizes() != f.second->sizes()) {
        std::ostringstream msg;
        msg << "state dict does not fit these moments: '" << key << "' has shape " << t.sizes()
            << ", expected " << f.second->sizes()
            << " (saved from moments with other n_layers, p, q or pairs?)";
        throw std::invalid_argument(msg.str());
      }
      *f.second = t.to(f.second->options()).clone();
    }
    loaded.push_back(v);
  }
  const int64_t n = take("n").item<int64_t>();
  const int64_t chunks = take("chunks").item<int64_t>();
  const double eps = take("eps").item<double>();
  if (used != state.size()) {
    throw std::invalid_argument(
        "state dict does not fit these moments: it has keys these moments do not keep (saved "
        "from moments with other rdms?)");
  }
  if (n < 0) throw std::invalid_argument("state dict does not fit: negative row count");
  state_ = loaded;
  n_ = n;
  chunks_ = chunks;
  eps_ = eps;
}

}  // namespace ftlens
