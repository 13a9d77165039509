// Pair values under a permutation of the rows: what a permutation test needs once every
// pair value of an RDM or kernel is held, so that no shuffle computes a tile again.
#pragma once

#include <ATen/ATen.h>

namespace ftlens {

// values: [n(n-1)/2] float64, the pairs i < j of a symmetric n x n matrix in row-major
// upper-triangle order (the "collect" reducer's order). order: [n] int64, a permutation.
// Returns the same pairs of the matrix with rows and columns taken in `order`:
// out[(i, j)] = values[(min(o_i, o_j), max(o_i, o_j))].
at::Tensor permute_pairs(const at::Tensor& values, const at::Tensor& order);

}  // namespace ftlens
