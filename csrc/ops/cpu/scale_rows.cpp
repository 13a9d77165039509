// CPU twin of scale_rows: one thread-parallel sweep, the conversion fused with the scaling.
#include <ATen/Parallel.h>


#include "ops/cpu/simd.h"
#include "ops/scale_rows.h"

namespace ftlens {
namespace cpu {

namespace {

template <typename In, typename Out>
void scale_row(const In* __restrict__ x, const Out* __restrict__ s, const Out* __restrict__ k, Out* __restrict__ o,
               int64_t d) {
  for (int64_t j = 0; j < d; ++j) o[j] = (static_cast<Out>(x[j]) - s[j]) * k[j];
}

// float16 store rows: 8 lanes of F16C conversions where the processor has them
void scale_row(const c10::Half* x, const float* s, const float* k, float* o, int64_t d) {
  scale_half_row(x, s, k, o, d);
}

}  // namespace

at::Tensor scale_rows(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale, at::Tensor out) {
  const int64_t layers = x.size(0), m = x.size(1), d = x.size(2);
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "scale_rows_cpu", [&] {
    using in_t = scalar_t;
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "scale_rows_cpu_out", [&] {
      const in_t* xp = x.data_ptr<in_t>();
      const scalar_t* sh = shift.data_ptr<scalar_t>();
      const scalar_t* sc = scale.data_ptr<scalar_t>();
      scalar_t* op = out.data_ptr<scalar_t>();
      at::parallel_for(0, layers * m, 64, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const int64_t l = row / m;
          const in_t* __restrict__ xr = xp + row * d;
          const scalar_t* __restrict__ s = sh + l * d;
          const scalar_t* __restrict__ k = sc + l * d;
          scalar_t* __restrict__ o = op + row * d;
          scale_row(xr, s, k, o, d);
        }
      });
    });
  });
  return out;
}

}  // namespace cpu
}  // namespace ftlens
