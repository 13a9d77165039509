// CPU twin of add_into: a parallel elementwise sweep.
#include <ATen/Parallel.h>

#include "ops/add_into.h"

namespace ftlens {
namespace cpu {

void add_into(at::Tensor& acc, const at::Tensor& x) {
  double* ap = acc.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "add_into_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) ap[i] += xp[i];
    });
  });
}

}  // namespace cpu
}  // namespace ftlens
