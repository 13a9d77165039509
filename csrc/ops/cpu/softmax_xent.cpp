// CPU twin of softmax_xent: one thread-parallel sweep over (layer, row), every task's
// columns handled in turn (a few to a few hundred columns each).
#include <ATen/Parallel.h>

#include <cmath>

#include "ops/cpu/simd.h"
#include "ops/softmax_xent.h"

namespace ftlens {
namespace cpu {

namespace {

void exp_shifted_in_place(double* v, int64_t n, double peak) {
  for (int64_t j = 0; j < n; ++j) v[j] = std::exp(v[j] - peak);
}

// float32 logits: 8 lanes where the processor has AVX2
void exp_shifted_in_place(float* v, int64_t n, float peak) { exp_shifted(v, n, peak); }

}  // namespace

at::Tensor softmax_xent(at::Tensor logits, const at::Tensor& labels, const at::Tensor& offsets) {
  const int64_t layers = logits.size(0), m = logits.size(1), c = logits.size(2), tasks = labels.size(1);
  auto loss = at::zeros({layers, m, tasks}, logits.options().dtype(at::kDouble));
  const int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t* off = offsets.data_ptr<int64_t>();
  double* lp = loss.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "softmax_xent_cpu", [&] {
    scalar_t* zp = logits.data_ptr<scalar_t>();
    at::parallel_for(0, layers * m, 16, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t r = row % m;
        scalar_t* z = zp + row * c;
        for (int64_t t = 0; t < tasks; ++t) {
          scalar_t* zt = z + off[t];
          const int64_t width = off[t + 1] - off[t], y = lab[r * tasks + t];
          if (y < 0) {
            for (int64_t j = 0; j < width; ++j) zt[j] = 0;
            continue;
          }
          // exponentials in the logits' dtype (float32: vectorizable), their sum in float64
          scalar_t peak = zt[0];
          for (int64_t j = 1; j < width; ++j) peak = zt[j] > peak ? zt[j] : peak;
          const double label_logit = static_cast<double>(zt[y]) - static_cast<double>(peak);
          double total = 0.0;
          exp_shifted_in_place(zt, width, peak);
          for (int64_t j = 0; j < width; ++j) total += zt[j];
          const scalar_t inverse = static_cast<scalar_t>(1.0 / total);
          lp[row * tasks + t] = std::log(total) - label_logit;
          for (int64_t j = 0; j < width; ++j) zt[j] *= inverse;
          zt[y] -= scalar_t(1);
        }
      }
    });
  });
  return loss;
}

}  // namespace cpu
}  // namespace ftlens
