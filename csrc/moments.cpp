#include "moments.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <c10/util/Exception.h>

#include "ops/center_rows.h"
#include "ops/column_sums.h"
#include "ops/dispatch.h"
#include "ops/row_extremes.h"
#include "ops/unit_rows.h"
#include "ops/weighted_sums.h"
#include "stats/gram.h"

namespace ftlens {
namespace {

using at::Tensor;

// a^T a for a: [m, d] -> [d, d] in `scratch`.
Tensor symmetric_gram(const Tensor& a, Scratch& scratch) {
  Tensor out = scratch.get("gram", {a.size(1), a.size(1)}, a.scalar_type(), a.device());
  return gram_into(a, out);
}

// A float32 product promoted to float64 in `scratch` (a float64 one as it is).
Tensor in_float64(const Tensor& product, Scratch& scratch) {
  if (product.scalar_type() == at::kDouble) return product;
  return scratch.get("product64", product.sizes(), at::kDouble, product.device()).copy_(product);
}

// Co-moment products of centered rows, as float32 GEMMs where the rows are unit rows of a
// float32 input (centered in float64, then rounded). Unit rows that crowd around one
// direction h make t_i = mu.e_i a second-order quantity, which float32 rounding of e_i
// would swamp; so the components along each side's h are taken exactly from float64 sums
// (ga = sum_i wb_i a_i, gb = sum_i wa_i b_i, wab = sum_i wa_i wb_i with w = rows.h from the
// float64 rows) and only the orthogonal part P_a (a^T b) P_b comes from the float32 GEMM. `product`: a float64 temporary, updated.
Tensor along_direction_exact(Tensor product, const Tensor& ha, const Tensor& hb, const Tensor& ga,
                             const Tensor& gb, const Tensor& wab) {
  auto project = [](const Tensor& v, const Tensor& h) { return v - h * at::dot(h, v); };
  const Tensor sh = at::mv(product, hb);      // [p]: S hb
  const Tensor hs = at::mv(product.t(), ha);  // [q]: S^T ha
  const Tensor hsh = at::dot(ha, sh);
  // S - ha hs^T - sh hb^T + hsh ha hb^T + ga' hb^T + ha gb'^T + wab ha hb^T as one rank-2
  // update: S + ha (gb' - hs + (hsh + wab) hb)^T + (ga' - sh) hb^T.
  const Tensor u = at::stack({ha, project(ga, ha) - sh}, 1);                    // [p, 2]
  const Tensor v = at::stack({project(gb, hb) - hs + (hsh + wab) * hb, hb}, 0);  // [2, q]
  return product.addmm_(u, v);
}

// Moves a block's row-norm terms from the sides' shifts (x.shift, y.shift) to shifts moved
// by s (X) and t (Y); the block holds n rows.
void rebase_block(Block& b, const Side& x, const Side& y, const Tensor& s, const Tensor& t, double n,
                  bool own) {
  const Tensor dx = x.mean - x.shift, dy = y.mean - y.shift;
  const Tensor &a1 = x.norm2_sum, &b1 = y.norm2_sum;
  const Tensor u1 = dx * n, v1 = dy * n;  // sums of the rows about the old shifts
  // M = sum_i u_i v_i^T = S + n dx dy^T, applied to t and (transposed) to s.
  const Tensor mt = b.co.times(t) + n * dx * at::dot(dy, t);
  const Tensor mts = own ? mt : b.co.transposed_times(s) + n * dy * at::dot(dx, s);
  const Tensor ss = at::dot(s, s), tt = at::dot(t, t), su = at::dot(s, u1), tv = at::dot(t, v1);
  const Tensor &xb = b.x_by_partner_norm2, &ya = b.y_by_partner_norm2;
  b.norm2_products = b.norm2_products - 2 * at::dot(t, ya) + tt * a1 - 2 * at::dot(s, xb) +
                     4 * at::dot(s, mt) - 2 * tt * su + ss * b1 - 2 * ss * tv + n * ss * tt;
  b.x_by_partner_norm2 = xb - 2 * mt + tt * u1 - s * b1 + 2 * s * tv - n * tt * s;
  b.y_by_partner_norm2 = ya - 2 * mts + ss * v1 - t * a1 + 2 * t * su - n * ss * t;
}

void rebase_side(Side& x, const Tensor& new_shift, double n) {
  const Tensor s = new_shift - x.shift;
  x.norm2_sum = x.norm2_sum - 2 * at::dot(s, (x.mean - x.shift) * n) + n * at::dot(s, s);
  x.shift = new_shift.clone();
}

// Adds `other` (n2 rows) to `into` (n1 rows); `other` is already about into's shift.
void add_side(Side& into, const Side& other, double n1, double n2) {
  into.mean = into.mean + (other.mean - into.mean) * (n2 / (n1 + n2));
  into.norm2_sum = into.norm2_sum + other.norm2_sum;
  into.unit_sum = into.unit_sum + other.unit_sum;
  into.zero_rows = into.zero_rows + other.zero_rows;
}

Side clone(const Side& s) {
  return {s.mean.clone(), s.shift.clone(), s.norm2_sum.clone(), s.unit_sum.clone(), s.zero_rows.clone()};
}

double unit_roundoff(at::ScalarType t) {
  return t == at::kDouble ? std::numeric_limits<double>::epsilon()
                          : static_cast<double>(std::numeric_limits<float>::epsilon());
}

// Where a chunk's rows come from, for error messages.
struct RowOrigin {
  const char* stream;
  int64_t layer, rows_before, chunk;
};

[[noreturn]] void non_finite_error(const Tensor& rows, const RowOrigin& at_, const std::string& why) {
  const Tensor bad = (~at::isfinite(rows)).any(1).nonzero();
  std::ostringstream msg;
  msg << at_.stream << " contains NaN or Inf at layer " << at_.layer;
  if (bad.numel() > 0) {
    const int64_t row = bad[0][0].item<int64_t>();
    msg << ", row " << at_.rows_before + row << " (row " << row << " of chunk " << at_.chunk << ")";
  } else {
    msg << " in chunk " << at_.chunk << " (" << why << ")";
  }
  msg << ". Remove or impute non-finite values (e.g. from fp16 overflow) before accumulating.";
  C10_THROW_ERROR(ValueError, msg.str());
}


// True when a float32 chunk whose largest magnitude is `peak` would leave the range of
// its float32 GEMMs: above 1e15 sums of squares approach overflow (3.4e38 over a few
// thousand rows); below 1e-15 the squares approach float32's subnormal range and lose
// digits (a whole representation scaled by 1e-23, say). Such a chunk runs in float64.
bool outside_float32_gemm_range(double peak) {
  constexpr double kLargest = 1e15, kSmallest = 1e-15;
  return peak > kLargest || (peak > 0 && peak < kSmallest);
}

}  // namespace

const char* pairs_name(Pairs pairs) { return pairs == Pairs::All ? "all" : "diagonal"; }

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

namespace {

// A row that a unit view cannot normalize: all zero, or constant for "correlation".
[[noreturn]] void zero_norm_error(const RowOrigin& at_, int64_t row, View view) {
  const bool center = view == View::Correlation;
  const std::string name = view_name(view);
  std::ostringstream msg;
  msg << at_.stream << " row " << at_.rows_before + row << " (row " << row << " of chunk " << at_.chunk
      << ") at layer " << at_.layer << " has zero norm"
      << (center ? " after subtracting its mean (a constant row)" : "") << ", so its " << name
      << " RDM entries are undefined. Drop such rows (e.g. padding) or leave '" << name
      << "' out of the requested RDMs.";
  C10_THROW_ERROR(ValueError, msg.str());
}

}  // namespace

// One layer of one stream of a chunk, centered about its rounded mean.
struct PreparedRows {
  Side side;           // the chunk's statistics (unit_sum from the own weighted sums)
  Tensor rows;         // [m, d] rows - shift, in the GEMM dtype
  Tensor alpha, inv;   // [m] float64: ||x_i - shift||^2 and 1/||x_i|| (0 for zero rows)
  Tensor residual;     // [d] mean - shift
  Tensor h, w;         // split only: [d] the mean's direction, [m] rows . h from float64 rows
  bool split = false;  // unit rows of a float32 input: float32 GEMMs + exact sums along h
};

MomentsCore::MomentsCore(int64_t layers, int64_t p, int64_t q, Pairs pairs, const std::vector<View>& views)
    : layers_(layers), p_(p), q_(q), pairs_(pairs) {
  if (layers < 1) C10_THROW_ERROR(ValueError, "n_layers must be >= 1, got " + std::to_string(layers));
  if (p < 1) C10_THROW_ERROR(ValueError, "p (columns of X) must be >= 1, got " + std::to_string(p));
  if (q < 0) C10_THROW_ERROR(ValueError, "q (columns of Y) must be >= 0, got " + std::to_string(q));
  if (views.empty()) C10_THROW_ERROR(ValueError, "at least one view is needed");
  for (const View v : views) {
    if (std::find(views_.begin(), views_.end(), v) == views_.end()) views_.push_back(v);
  }
  const auto idx = at::TensorOptions().dtype(at::kLong);
  if (pairs == Pairs::Diagonal) {
    pair_x_ = at::arange(layers, idx);
    pair_y_ = pair_x_.clone();
  } else {
    pair_x_ = at::arange(layers, idx).repeat_interleave(layers);
    pair_y_ = at::arange(layers, idx).repeat(layers);
  }
  reset();
}

std::vector<std::string> MomentsCore::view_names() const {
  std::vector<std::string> out;
  for (View v : views_) out.push_back(view_name(v));
  return out;
}

MomentsCore::Accumulated MomentsCore::empty_view(const at::TensorOptions& opts) const {
  auto side = [&](int64_t d) {
    return Side{at::zeros({d}, opts), at::zeros({d}, opts), at::zeros({}, opts), at::zeros({d}, opts),
                at::zeros({}, opts.dtype(at::kLong))};
  };
  auto block = [&](int64_t a, int64_t b) {
    return Block{CoMoment::empty(a, b, opts), at::zeros({}, opts), at::zeros({a}, opts), at::zeros({b}, opts)};
  };
  Accumulated v;
  for (int64_t l = 0; l < layers_; ++l) {
    v.x.push_back(side(p_));
    v.xx.push_back(block(p_, p_));
    if (q_ > 0) {
      v.y.push_back(side(q_));
      v.yy.push_back(block(q_, q_));
    }
  }
  if (q_ > 0) {
    for (int64_t b = 0; b < pair_x_.size(0); ++b) v.xy.push_back(block(p_, q_));
  }
  return v;
}

void MomentsCore::reset() {
  const auto opts = at::TensorOptions().dtype(at::kDouble).device(device_);
  state_.clear();
  for (size_t i = 0; i < views_.size(); ++i) state_.push_back(empty_view(opts));
  n_ = 0;
  chunks_ = 0;
  eps_ = 0.0;
  scratch_.clear();  // also frees the working buffers
}

void MomentsCore::rebase_to(const MomentsCore& reference) {
  if (reference.layers_ != layers_ || reference.p_ != p_ || reference.q_ != q_ || reference.pairs_ != pairs_ ||
      reference.views_ != views_) {
    C10_THROW_ERROR(ValueError, "rebase_to needs moments of the same configuration (layers, widths, pairs, views)");
  }
  if (n_ == 0 || reference.n_ == 0) C10_THROW_ERROR(ValueError, "rebase_to needs moments with rows on both sides");
  const double n = static_cast<double>(n_);
  const auto lx_of = pair_x_.cpu(), ly_of = pair_y_.cpu();
  for (size_t i = 0; i < views_.size(); ++i) {
    Accumulated& a = state_[i];
    const Accumulated& r = reference.state_[i];
    auto moved = [](const Side& mine, const Side& theirs) { return theirs.shift.to(mine.shift.device()) - mine.shift; };
    // blocks first: their terms are about the sides' current shifts
    for (int64_t l = 0; l < layers_; ++l) {
      rebase_block(a.xx[l], a.x[l], a.x[l], moved(a.x[l], r.x[l]), moved(a.x[l], r.x[l]), n, true);
      if (q_ > 0) rebase_block(a.yy[l], a.y[l], a.y[l], moved(a.y[l], r.y[l]), moved(a.y[l], r.y[l]), n, true);
    }
    for (size_t b = 0; b < a.xy.size(); ++b) {
      const int64_t lx = lx_of[b].item<int64_t>(), ly = ly_of[b].item<int64_t>();
      rebase_block(a.xy[b], a.x[lx], a.y[ly], moved(a.x[lx], r.x[lx]), moved(a.y[ly], r.y[ly]), n, false);
    }
    for (auto [sides, theirs] : {std::pair{&a.x, &r.x}, std::pair{&a.y, &r.y}}) {
      for (size_t l = 0; l < sides->size(); ++l) {
        rebase_side((*sides)[l], (*theirs)[l].shift.to((*sides)[l].shift.device()), n);
      }
    }
  }
}

void MomentsCore::move(Accumulated& a, const at::Device& device) {
  for (auto* sides : {&a.x, &a.y}) {
    for (Side& s : *sides) {
      for (Tensor* t : {&s.mean, &s.shift, &s.norm2_sum, &s.unit_sum, &s.zero_rows}) *t = t->to(device);
    }
  }
  for (auto* blocks : {&a.xx, &a.yy, &a.xy}) {
    for (Block& b : *blocks) {
      b.co = b.co.to(device);
      for (Tensor* t : {&b.norm2_products, &b.x_by_partner_norm2, &b.y_by_partner_norm2}) *t = t->to(device);
    }
  }
}

void MomentsCore::to_device(const at::Device& device) {
  if (device_ == device) return;
  device_ = device;
  pair_x_ = pair_x_.to(device);
  pair_y_ = pair_y_.to(device);
  for (auto& v : state_) move(v, device);
  scratch_.clear();
}

PreparedRows MomentsCore::prepare(const Tensor& layer_rows, const Survey& survey, size_t view_index, int64_t layer,
                                  at::ScalarType gemm_dtype, const char* stream) {
  const View view = views_[view_index];
  const int64_t m = layer_rows.size(0), d = layer_rows.size(1);
  const Tensor x = layer_rows.unsqueeze(0);
  const Tensor out = scratch_.get(std::string("center ") + stream, {1, m, d}, gemm_dtype, layer_rows.device());
  PreparedRows c;
  if (view == View::Raw) {
    c.side.mean = survey.sums[layer] / static_cast<double>(m);
    const Tensor shift = c.side.mean.to(layer_rows.scalar_type());  // a nearby mean, exact in the rows' dtype
    auto [centered, alpha, inv] = center_rows(x, shift.unsqueeze(0), gemm_dtype, out);
    c.rows = centered[0];
    c.alpha = alpha[0];
    c.inv = inv[0];
    c.side.shift = shift.to(at::kDouble);
  } else {
    // Unit rows exist only in registers, in float64: the chunk's centering keeps the small
    // differences between nearly parallel rows, which float32 unit rows would lose.
    const auto& [row_mean, scale, sums] = survey.unit[view_index];
    c.side.mean = sums[layer] / static_cast<double>(m);
    c.side.shift = c.side.mean;
    c.split = gemm_dtype == at::kFloat;
    if (c.split) c.h = c.side.mean / c.side.mean.norm().clamp_min(1e-300);
    auto [centered, alpha, inv, along] =
        center_unit_rows(x, row_mean.narrow(0, layer, 1), scale.narrow(0, layer, 1), c.side.shift.unsqueeze(0),
                         c.split ? c.h.unsqueeze(0) : Tensor(), out);
    c.rows = centered[0];
    c.alpha = alpha[0];
    c.inv = inv[0];
    if (c.split) c.w = along[0];
  }
  c.side.norm2_sum = c.alpha.sum();
  c.side.zero_rows = (c.inv == 0).sum();
  c.residual = c.side.mean - c.side.shift;
  return c;
}

namespace {

// sum_i v_i (x_i - shift) for each weight column v: [d, k] float64. In split mode the
// float32 rows keep the components across h; the component along h of each sum is
// replaced by the exact sum_i v_i w_i.
Tensor prepared_weighted_sums(const PreparedRows& c, const std::vector<Tensor>& weights) {
  const Tensor v = at::stack(weights, 0);  // [k, m] float64
  Tensor sums = weighted_sums(c.rows, v);
  if (c.split) sums.addr_(c.h, at::mv(v, c.w) - at::mv(sums.t(), c.h));
  return sums;
}

// The weight columns of one skinny GEMM over a prepared layer: its own (alpha, 1/||x||,
// and w in split mode) when `own`, then its partner's (alpha, and w in split mode).
std::vector<Tensor> row_weights(const PreparedRows& c, const PreparedRows* partner, bool own) {
  std::vector<Tensor> w;
  if (own) {
    w = {c.alpha, c.inv};
    if (c.split) w.push_back(c.w);
  }
  if (partner != nullptr) {
    w.push_back(partner->alpha);
    if (c.split) w.push_back(partner->w);
  }
  return w;
}

// A prepared layer's block with itself, from its own weighted sums [d, k]; completes the
// chunk side's unit_sum.
Block own_block(PreparedRows& c, const Tensor& sums, Scratch& scratch) {
  Tensor product = symmetric_gram(c.rows, scratch);
  if (c.split) {
    const Tensor g = sums.select(1, 2);
    product = along_direction_exact(in_float64(product, scratch), c.h, c.h, g, g, c.w.square().sum());
  }
  c.side.unit_sum = sums.select(1, 1) + c.side.shift * c.inv.sum();
  const Tensor by_norm2 = sums.select(1, 0).contiguous();
  return Block{CoMoment::chunk(c.rows.size(0), c.side.mean, c.side.mean, product, c.residual, c.residual),
               c.alpha.square().sum(), by_norm2, by_norm2};
}

// The block of two prepared layers; wx, wy: their weighted sums, the partner's columns last.
Block cross_block(const PreparedRows& cx, const PreparedRows& cy, const Tensor& wx, const Tensor& wy,
                  Scratch& scratch) {
  const int64_t k = cx.split ? 2 : 1;
  const Tensor px = wx.narrow(1, wx.size(1) - k, k), py = wy.narrow(1, wy.size(1) - k, k);
  Tensor product = scratch.get("cross", {cx.rows.size(1), cy.rows.size(1)}, cx.rows.scalar_type(), cx.rows.device());
  cross_into(cx.rows, cy.rows, product);
  if (cx.split) {
    product = along_direction_exact(in_float64(product, scratch), cx.h, cy.h, px.select(1, 1), py.select(1, 1),
                                    at::dot(cx.w, cy.w));
  }
  return Block{CoMoment::chunk(cx.rows.size(0), cx.side.mean, cy.side.mean, product, cx.residual, cy.residual),
               at::dot(cx.alpha, cy.alpha), px.select(1, 0).contiguous(), py.select(1, 0).contiguous()};
}

// Adds a chunk's sides (n2 rows) to the accumulated ones (n1 rows; adopted when n1 = 0).
void merge_sides(std::vector<Side>& sides, std::vector<Side>& chunk, double n1, double n2) {
  for (size_t l = 0; l < sides.size(); ++l) {
    if (n1 == 0) {
      sides[l] = chunk[l];
      continue;
    }
    rebase_side(chunk[l], sides[l].shift, n2);
    add_side(sides[l], chunk[l], n1, n2);
  }
}

}  // namespace

void MomentsCore::merge_block(Block& into, const Block& other, const Side& into_x, const Side& into_y,
                              const Side& other_x, const Side& other_y, bool own) const {
  if (into.co.n() == 0) {
    into.co.merge(other.co);  // adopts a private dense copy
    into.norm2_products = other.norm2_products.clone();
    into.x_by_partner_norm2 = other.x_by_partner_norm2.clone();
    into.y_by_partner_norm2 = other.y_by_partner_norm2.clone();
    return;
  }
  Block o = other;  // handles only: rebase assigns new tensors
  rebase_block(o, other_x, other_y, into_x.shift - other_x.shift, into_y.shift - other_y.shift, other.co.n(),
               own);
  into.co.merge(o.co);
  into.norm2_products = into.norm2_products + o.norm2_products;
  into.x_by_partner_norm2 = into.x_by_partner_norm2 + o.x_by_partner_norm2;
  into.y_by_partner_norm2 = into.y_by_partner_norm2 + o.y_by_partner_norm2;
}

// The products of a chunk are merged (or, on the first chunk, copied) before the next
// product is taken: they live in scratch buffers that the next one overwrites.
void MomentsCore::update_view(size_t view_index, Accumulated& into, const Tensor& xs, const Tensor& ys,
                              const Survey& survey_x, const Survey& survey_y) {
  const at::ScalarType gemm_dtype = xs.scalar_type();
  const bool with_y = q_ > 0, all = pairs_ == Pairs::All;
  std::vector<Side> chunk_x(layers_), chunk_y(with_y ? layers_ : 0);
  auto merge_own = [&](std::vector<Block>& blocks, std::vector<Side>& sides, std::vector<Side>& chunk_sides,
                       int64_t l, PreparedRows& c, const Tensor& sums) {
    const Block block = own_block(c, sums, scratch_);  // also completes c.side (its unit_sum)
    merge_block(blocks[l], block, sides[l], sides[l], c.side, c.side, true);
    chunk_sides[l] = c.side;
  };
  auto prepare_x = [&](int64_t l) { return prepare(xs[l], survey_x, view_index, l, gemm_dtype, "X"); };
  if (!with_y) {
    for (int64_t l = 0; l < layers_; ++l) {
      PreparedRows cx = prepare_x(l);
      merge_own(into.xx, into.x, chunk_x, l, cx, prepared_weighted_sums(cx, row_weights(cx, nullptr, true)));
    }
  } else {
    // Pairs in order (X layer major): each X layer is prepared once, its own block taken
    // the first time; Y layers are prepared per pair (their own blocks with X layer 0).
    const auto lx_of = pair_x_.cpu(), ly_of = pair_y_.cpu();
    PreparedRows cx;
    int64_t prepared_x = -1;
    for (int64_t b = 0; b < pair_x_.size(0); ++b) {
      const int64_t lx = lx_of[b].item<int64_t>(), ly = ly_of[b].item<int64_t>();
      const bool own_x = lx != prepared_x, own_y = !all || lx == 0;
      if (own_x) {
        cx = prepare_x(lx);
        prepared_x = lx;
      }
      PreparedRows cy = prepare(ys[ly], survey_y, view_index, ly, gemm_dtype, "Y");
      const Tensor wx = prepared_weighted_sums(cx, row_weights(cx, &cy, own_x));
      const Tensor wy = prepared_weighted_sums(cy, row_weights(cy, &cx, own_y));
      if (own_x) merge_own(into.xx, into.x, chunk_x, lx, cx, wx);
      if (own_y) merge_own(into.yy, into.y, chunk_y, ly, cy, wy);
      merge_block(into.xy[b], cross_block(cx, cy, wx, wy, scratch_), into.x[lx], into.y[ly], cx.side, cy.side,
                  false);
    }
  }
  // Sides last: every block above merged against the sides' earlier means and shifts.
  merge_sides(into.x, chunk_x, static_cast<double>(n_), static_cast<double>(xs.size(1)));
  if (with_y) merge_sides(into.y, chunk_y, static_cast<double>(n_), static_cast<double>(xs.size(1)));
}

void MomentsCore::check_stacks(const Tensor& xs, const Tensor& ys) const {
  auto check_stack = [&](const Tensor& t, const char* name, int64_t d) {
    if (t.dim() != 3 || t.size(0) != layers_ || t.size(2) != d) {
      std::ostringstream msg;
      msg << name << " must be [" << layers_ << ", rows, " << d << "], got " << t.sizes();
      C10_THROW_ERROR(ValueError, msg.str());
    }
    if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble) {
      C10_THROW_ERROR(ValueError, std::string(name) + " must be float32 or float64");
    }
  };
  check_stack(xs, "X", p_);
  check_kernels_for(xs, "Moments.update");
  if (q_ > 0) {
    if (!ys.defined()) C10_THROW_ERROR(ValueError, "Y is required: these moments have q > 0");
    check_stack(ys, "Y", q_);
    if (ys.size(1) != xs.size(1)) {
      C10_THROW_ERROR(ValueError, "X and Y must have the same number of rows, got " + std::to_string(xs.size(1)) +
                                  " and " + std::to_string(ys.size(1)));
    }
    if (ys.scalar_type() != xs.scalar_type() || ys.device() != xs.device()) {
      C10_THROW_ERROR(ValueError, "X and Y must share dtype and device");
    }
  }
}

void MomentsCore::check(const Tensor& xs, const Tensor& ys, int64_t rows_before) const {
  check_stacks(xs, ys);
  if (xs.size(1) == 0) return;
  auto has = [&](View view) { return std::find(views_.begin(), views_.end(), view) != views_.end(); };
  // A few reductions tell whether every row is usable; only a bad chunk pays for the survey
  // that names its first bad row.
  auto usable = [&](const Tensor& rows) {
    if (!at::isfinite(rows).all().item<bool>()) return false;
    if (!has(View::Cosine) && !has(View::Correlation)) return true;
    const Tensor hi = rows.amax(-1), lo = rows.amin(-1);
    if (has(View::Cosine) && ((hi == 0) & (lo == 0)).any().item<bool>()) return false;
    return !(has(View::Correlation) && (hi == lo).any().item<bool>());
  };
  if (usable(xs) && (q_ == 0 || usable(ys))) return;
  double peak = 0;
  check_rows_usable(xs.contiguous(), "X", peak, rows_before);
  if (q_ > 0) check_rows_usable(ys.contiguous(), "Y", peak, rows_before);
}

void MomentsCore::update(const Tensor& xs, const Tensor& ys) {
  check_stacks(xs, ys);
  if (xs.size(1) == 0) return;
  to_device(xs.device());
  Tensor x = xs.contiguous(), y = q_ > 0 ? ys.contiguous() : Tensor();
  // Blocks are merged layer by layer, so every row is checked before the first merge: a
  // bad row must not leave half a chunk accumulated.
  double peak_x = 0, peak_y = 1;
  const Survey survey_x = check_rows_usable(x, "X", peak_x);
  const Survey survey_y = q_ > 0 ? check_rows_usable(y, "Y", peak_y) : Survey{};
  if (x.scalar_type() == at::kFloat && (outside_float32_gemm_range(peak_x) || outside_float32_gemm_range(peak_y))) {
    x = x.to(at::kDouble);  // this chunk's products would overflow or lose their digits in float32
    if (q_ > 0) y = y.to(at::kDouble);
  }
  for (size_t i = 0; i < views_.size(); ++i) update_view(i, state_[i], x, y, survey_x, survey_y);
  eps_ = std::max(eps_, unit_roundoff(x.scalar_type()));
  n_ += xs.size(1);
  chunks_ += 1;
}

MomentsCore::Survey MomentsCore::check_rows_usable(const Tensor& rows, const char* stream, double& peak,
                                                   int64_t rows_before) const {
  const bool raw = std::find(views_.begin(), views_.end(), View::Raw) != views_.end();
  auto at_layer = [&](int64_t layer) { return RowOrigin{stream, layer, n_ + rows_before, chunks_}; };
  auto first = [](const Tensor& bad) -> std::pair<int64_t, int64_t> {  // (layer, row) of the first true
    const Tensor at_ = bad.nonzero();
    if (at_.size(0) == 0) return {-1, -1};
    return {at_[0][0].item<int64_t>(), bad.dim() > 1 ? at_[0][1].item<int64_t>() : -1};
  };
  Survey survey;
  peak = 1.0;
  if (raw) {
    // One pass: the column sums the raw view needs (NaN or Inf shows there) and each
    // layer's largest magnitude.
    Tensor peaks;
    std::tie(survey.sums, peaks) = column_sums(rows);
    const int64_t layer = first(~at::isfinite(survey.sums).all(1)).first;
    if (layer >= 0) non_finite_error(rows[layer], at_layer(layer), "its values overflow the sums");
    peak = peaks.max().item<double>();
  }
  // One pass per unit view: each row's scale. A NaN or Inf makes the row's unit entries,
  // and so the column sums, NaN; a zero scale is a zero row, or a constant one for
  // "correlation" (float32 rows: their float64 mean is exact, so a constant row centers
  // to exact zeros; float64 rows may not, so their extremes are compared as well).
  Tensor lo, hi;
  for (View view : views_) {
    if (view == View::Raw) {
      survey.unit.emplace_back();
      continue;
    }
    const bool center = view == View::Correlation;
    survey.unit.push_back(unit_row_scales(rows, center));
    const auto& [row_mean, scale, sums] = survey.unit.back();
    const int64_t layer = first(~at::isfinite(sums).all(1)).first;
    if (layer >= 0) non_finite_error(rows[layer], at_layer(layer), "its unit rows are not finite");
    Tensor unusable = scale == 0;
    if (center && rows.scalar_type() == at::kDouble) {
      if (!lo.defined()) std::tie(lo, hi) = row_extremes(rows);
      unusable = unusable | (lo == hi);
    }
    const auto [bad_layer, row] = first(unusable);
    if (bad_layer >= 0) zero_norm_error(at_layer(bad_layer), row, view);
  }
  return survey;
}

void MomentsCore::merge_view(Accumulated& into, const Accumulated& other, double n_other) const {
  for (int64_t l = 0; l < layers_; ++l) {
    merge_block(into.xx[l], other.xx[l], into.x[l], into.x[l], other.x[l], other.x[l], true);
    if (q_ > 0) merge_block(into.yy[l], other.yy[l], into.y[l], into.y[l], other.y[l], other.y[l], true);
  }
  const auto lx_of = pair_x_.cpu(), ly_of = pair_y_.cpu();
  for (size_t b = 0; b < into.xy.size(); ++b) {
    const int64_t lx = lx_of[b].item<int64_t>(), ly = ly_of[b].item<int64_t>();
    merge_block(into.xy[b], other.xy[b], into.x[lx], into.y[ly], other.x[lx], other.y[ly], false);
  }
  for (auto [sides, others] : {std::pair{&into.x, &other.x}, std::pair{&into.y, &other.y}}) {
    std::vector<Side> copies;  // merge_sides re-bases them in place
    for (const Side& s : *others) copies.push_back(clone(s));
    merge_sides(*sides, copies, static_cast<double>(n_), n_other);
  }
}

void MomentsCore::merge(const MomentsCore& other) {
  if (&other == this) {
    C10_THROW_ERROR(ValueError, "cannot merge moments into themselves; merge a copy (copy.deepcopy)");
  }
  auto fail = [&](const std::string& what, const std::string& mine, const std::string& theirs) {
    C10_THROW_ERROR(ValueError, "cannot merge moments with different " + what + ": this has " + mine +
                                ", other has " + theirs + ". Merge only accumulators built with the same arguments.");
  };
  auto joined = [](const std::vector<std::string>& names) {
    std::string s;
    for (const auto& v : names) s += (s.empty() ? "" : " ") + v;
    return "[" + s + "]";
  };
  if (other.layers_ != layers_) fail("n_layers", std::to_string(layers_), std::to_string(other.layers_));
  if (other.p_ != p_) fail("p", std::to_string(p_), std::to_string(other.p_));
  if (other.q_ != q_) fail("q", std::to_string(q_), std::to_string(other.q_));
  if (other.pairs_ != pairs_) fail("pairs", pairs_name(pairs_), pairs_name(other.pairs_));
  if (other.views_ != views_) fail("views (rdms)", joined(view_names()), joined(other.view_names()));
  if (other.n_ == 0) return;
  to_device(n_ > 0 ? device_ : other.device_);
  for (size_t i = 0; i < views_.size(); ++i) {
    Accumulated o = other.state_[i];
    if (other.device_ != device_) move(o, device_);
    merge_view(state_[i], o, static_cast<double>(other.n_));
  }
  n_ += other.n_;
  chunks_ += other.chunks_;
  eps_ = std::max(eps_, other.eps_);
}

ViewState MomentsCore::finalized(View view) const {
  const auto it = std::find(views_.begin(), views_.end(), view);
  if (it == views_.end()) {
    C10_THROW_ERROR(ValueError, "the '" + view_name(view) +
                                "' view was not accumulated: create the moments with it among the requested rdms");
  }
  const Accumulated& a = state_[it - views_.begin()];
  const double n = static_cast<double>(n_);
  const auto lx_of = pair_x_.cpu(), ly_of = pair_y_.cpu();
  auto to_mean = [](const Side& s) { return s.mean - s.shift; };
  auto finalize_block = [&](const Block& b, const Side& x, const Side& y, bool own) {
    Block out = b;
    rebase_block(out, x, y, to_mean(x), to_mean(y), n, own);
    return out;
  };
  auto stack_blocks = [](const std::vector<Block>& blocks) {
    const Tensor& first = blocks.front().co.mean_a();
    const int64_t p = first.size(0), q = blocks.front().co.mean_b().size(0);
    Tensor s = at::empty({static_cast<int64_t>(blocks.size()), p, q}, first.options());
    std::vector<Tensor> ab, xb, ya;
    for (size_t i = 0; i < blocks.size(); ++i) {
      const Block& b = blocks[i];
      b.co.dense_into(s[static_cast<int64_t>(i)]);  // in place: no per-block copy to stack
      ab.push_back(b.norm2_products);
      xb.push_back(b.x_by_partner_norm2);
      ya.push_back(b.y_by_partner_norm2);
    }
    return BlockStack{s, at::stack(ab), at::stack(xb), at::stack(ya)};
  };
  auto stack_sides = [&](const std::vector<Side>& sides) {
    std::vector<Tensor> mean, shift, norm2, unit, zero;
    for (Side s : sides) {
      rebase_side(s, s.mean, n);
      mean.push_back(s.mean);
      shift.push_back(s.shift);
      norm2.push_back(s.norm2_sum);
      unit.push_back(s.unit_sum);
      zero.push_back(s.zero_rows);
    }
    return SideStack{at::stack(mean), at::stack(shift), at::stack(norm2), at::stack(unit), at::stack(zero)};
  };
  std::vector<Block> xx, yy, xy;
  for (int64_t l = 0; l < layers_; ++l) {
    xx.push_back(finalize_block(a.xx[l], a.x[l], a.x[l], true));
    if (q_ > 0) yy.push_back(finalize_block(a.yy[l], a.y[l], a.y[l], true));
  }
  for (size_t b = 0; b < a.xy.size(); ++b) {
    const int64_t lx = lx_of[b].item<int64_t>(), ly = ly_of[b].item<int64_t>();
    xy.push_back(finalize_block(a.xy[b], a.x[lx], a.y[ly], false));
  }
  ViewState v;
  v.x = stack_sides(a.x);
  v.xx = stack_blocks(xx);
  if (q_ > 0) {
    v.y = stack_sides(a.y);
    v.yy = stack_blocks(yy);
    v.xy = stack_blocks(xy);
  }
  return v;
}

namespace {

// Every tensor of a side and of a block's row-norm terms, by name.
std::vector<std::pair<std::string, Tensor*>> side_fields(Side& s) {
  return {{"mean", &s.mean}, {"shift", &s.shift}, {"norm2_sum", &s.norm2_sum}, {"unit_sum", &s.unit_sum},
          {"zero_rows", &s.zero_rows}};
}
std::vector<std::pair<std::string, Tensor*>> norm_fields(Block& b) {
  return {{"norm2_products", &b.norm2_products},
          {"x_by_partner_norm2", &b.x_by_partner_norm2},
          {"y_by_partner_norm2", &b.y_by_partner_norm2}};
}

}  // namespace

// Keys: n, chunks, eps; "<view>.<x|y>.<layer>.<field>" for the sides;
// "<view>.<xx|yy>.<layer>.<field>" and "<view>.xy.<pair>.<field>" for the blocks.
std::map<std::string, Tensor> MomentsCore::state_dict() const {
  std::map<std::string, Tensor> out;
  const auto cpu_long = at::TensorOptions().dtype(at::kLong);
  out["n"] = at::tensor({n_}, cpu_long);
  out["chunks"] = at::tensor({chunks_}, cpu_long);
  out["eps"] = at::tensor({eps_}, at::TensorOptions().dtype(at::kDouble));
  auto cpu = [](const Tensor& t) { return t.detach().to(at::kCPU, false, true); };
  for (size_t i = 0; i < views_.size(); ++i) {
    Accumulated a = state_[i];
    const std::string view = view_name(views_[i]) + ".";
    auto sides = [&](const char* name, std::vector<Side>& list) {
      for (size_t l = 0; l < list.size(); ++l) {
        for (auto& [key, t] : side_fields(list[l])) out[view + name + "." + std::to_string(l) + "." + key] = cpu(*t);
      }
    };
    auto blocks = [&](const char* name, std::vector<Block>& list) {
      for (size_t b = 0; b < list.size(); ++b) {
        const std::string prefix = view + name + "." + std::to_string(b) + ".";
        out.merge(list[b].co.state_dict(prefix));
        for (auto& [key, t] : norm_fields(list[b])) out[prefix + key] = cpu(*t);
      }
    };
    sides("x", a.x);
    sides("y", a.y);
    blocks("xx", a.xx);
    blocks("yy", a.yy);
    blocks("xy", a.xy);
  }
  return out;
}

void MomentsCore::load_state_dict(const std::map<std::string, Tensor>& state) {
  const auto opts = at::TensorOptions().dtype(at::kDouble).device(device_);
  std::vector<Accumulated> loaded;
  size_t used = 0;
  auto take = [&](const std::string& key, at::IntArrayRef sizes) {
    ++used;
    return state_entry(state, key, sizes);
  };
  for (View view : views_) {
    Accumulated a = empty_view(opts);
    const std::string prefix = view_name(view) + ".";
    auto sides = [&](const char* name, std::vector<Side>& list) {
      for (size_t l = 0; l < list.size(); ++l) {
        for (auto& [key, t] : side_fields(list[l])) {
          *t = take(prefix + name + "." + std::to_string(l) + "." + key, t->sizes()).to(t->options(), false, true);
        }
      }
    };
    auto blocks = [&](const char* name, std::vector<Block>& list, int64_t p, int64_t q) {
      for (size_t b = 0; b < list.size(); ++b) {
        const std::string key = prefix + name + "." + std::to_string(b) + ".";
        list[b].co = CoMoment::from_state_dict(state, key, p, q, opts);
        used += 4;
        for (auto& [field, t] : norm_fields(list[b])) *t = take(key + field, t->sizes()).to(t->options(), false, true);
      }
    };
    sides("x", a.x);
    sides("y", a.y);
    blocks("xx", a.xx, p_, p_);
    blocks("yy", a.yy, q_, q_);
    blocks("xy", a.xy, p_, q_);
    loaded.push_back(std::move(a));
  }
  const int64_t n = take("n", {1}).item<int64_t>();
  const int64_t chunks = take("chunks", {1}).item<int64_t>();
  const double eps = take("eps", {1}).item<double>();
  if (used != state.size()) {
    C10_THROW_ERROR(ValueError, 
        "state dict does not fit these moments: it has keys these moments do not keep (saved from moments "
        "with other rdms or pairs?)");
  }
  if (n < 0) C10_THROW_ERROR(ValueError, "state dict does not fit: negative row count");
  state_ = std::move(loaded);
  n_ = n;
  chunks_ = chunks;
  eps_ = eps;
}

}  // namespace ftlens
