// The Gram matrix X^T X of a row block from the GEMMs of its upper block triangle only: the
// lower blocks are the transposes, so a third of the flops (at d = 768) are not spent.
#pragma once

#include <ATen/ATen.h>

namespace ftlens {

// x: [m, d] -> [d, d] in x's dtype, exactly symmetric.
at::Tensor gram(const at::Tensor& x);

}  // namespace ftlens
