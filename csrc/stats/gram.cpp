#include "stats/gram.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace ftlens {
namespace {

// out[i][j] = out[j][i] for the rows below a panel of columns [lo, lo + width) of a
// square matrix: a tiled transpose on CPU (a strided copy_ costs several times more).
void mirror_below_panel(at::Tensor& out, int64_t lo, int64_t width) {
  const int64_t d = out.size(0), top = lo + width;
  if (top >= d) return;
  if (!out.is_cpu()) {
    out.narrow(0, top, d - top).narrow(1, lo, width).copy_(out.narrow(0, lo, width).narrow(1, top, d - top).t());
    return;
  }
  constexpr int64_t kTile = 32;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "mirror_below_panel", [&] {
    scalar_t* p = out.data_ptr<scalar_t>();
    for (int64_t i0 = top; i0 < d; i0 += kTile) {
      for (int64_t j0 = lo; j0 < top; j0 += kTile) {
        for (int64_t i = i0; i < std::min(i0 + kTile, d); ++i) {
          for (int64_t j = j0; j < std::min(j0 + kTile, top); ++j) p[i * d + j] = p[j * d + i];
        }
      }
    }
  });
}

// Below a few hundred columns narrow GEMMs would lose more than the flops saved; beyond
// kMaxTasks threads, single-threaded panels would be too narrow.
constexpr int64_t kMinDim = 256, kSharedPanels = 4, kMaxTasks = 4;

// Panel i's upper strip out[lo:lo+w, lo:] = x[:, lo:lo+w]^T x[:, lo:], mirrored below.
void panel(const at::Tensor& x, at::Tensor& out, int64_t i, int64_t panels) {
  const int64_t d = x.size(1), lo = i * d / panels, width = (i + 1) * d / panels - lo;
  at::Tensor strip = out.narrow(0, lo, width).narrow(1, lo, d - lo);  // row stride d
  at::mm_out(strip, x.t().narrow(0, lo, width), x.narrow(1, lo, d - lo));
  mirror_below_panel(out, lo, width);
}

}  // namespace

at::Tensor& gram_into(const at::Tensor& x, at::Tensor& out) {
  TORCH_CHECK_VALUE(x.dim() == 2, "gram: expected rows [m, d]");
  const int64_t d = x.size(1), threads = at::get_num_threads();
  if (d < kMinDim) return at::mm_out(out, x.t(), x);
  if (!x.is_cpu() || threads > kMaxTasks) {
    // Every GEMM shared by all threads (many CPU threads would leave single-threaded
    // panels too narrow) or queued on the device.
    for (int64_t i = 0; i < kSharedPanels; ++i) panel(x, out, i, kSharedPanels);
    return out;
  }
  // Panels i and panels - 1 - i together cost the same for every i, so each such pair is
  // one task and every thread gets as many: each GEMM runs single-threaded inside its task
  // (BLAS does not nest), which for these narrow panels beats splitting every GEMM over
  // the threads (about a tenth less time at d = 384 on 2 threads).
  const int64_t tasks = threads * ((kMaxTasks + threads - 1) / threads), panels = 2 * tasks;
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      panel(x, out, t, panels);
      panel(x, out, panels - 1 - t, panels);
    }
  });
  return out;
}

at::Tensor& cross_into(const at::Tensor& x, const at::Tensor& y, at::Tensor& out) {
  const int64_t threads = at::get_num_threads(), q = y.size(1);
  if (!x.is_cpu() || threads == 1 || threads > kMaxTasks || q < kMinDim) return at::mm_out(out, x.t(), y);
  // One column slice per thread, each a single-threaded GEMM: no synchronization inside
  // the product, which matters most when other work (forward passes) shares the cores.
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t lo = t * q / threads, width = (t + 1) * q / threads - lo;
      at::Tensor slice = out.narrow(1, lo, width);
      at::mm_out(slice, x.t(), y.narrow(1, lo, width));
    }
  });
  return out;
}

at::Tensor gram(const at::Tensor& x) {
  at::Tensor out = at::empty({x.size(1), x.size(1)}, x.options());
  return gram_into(x, out);
}

}  // namespace ftlens
