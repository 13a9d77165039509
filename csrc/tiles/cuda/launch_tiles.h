// Thin ATen launchers of the CUDA tile reducers (tile_kernels.cu): one call per tile.
#pragma once

#include <ATen/ATen.h>

#include "tiles/maps.h"

namespace ftlens {
namespace cuda {

// A tile on the GPU: the GEMM outputs [ti, tj] (gy undefined: one side), the squared norms
// of its rows and columns, where it sits among n rows, and the two sides' maps.
struct TileTensors {
  at::Tensor gx, gy, axi, axj, ayi, ayj;
  int64_t i0, j0, n;
  bool diagonal;
  int map_x, map_y;
  double gamma_x, gamma_y;
};

void tile_hsic(const TileTensors& t, double shift_x, double shift_y, at::Tensor& sums, at::Tensor& row_x,
               at::Tensor& row_y, at::Tensor& diag_x, at::Tensor& diag_y);
void tile_pearson(const TileTensors& t, double shift_x, double shift_y, bool ranks, const tiles::Bins& bins_x,
                  const tiles::Bins& bins_y, at::Tensor& sums);
void tile_histogram(const TileTensors& t, const tiles::Bins& bins_x, const tiles::Bins& bins_y, at::Tensor& counts_x,
                    at::Tensor& counts_y, at::Tensor& extremes);
void tile_collect(const TileTensors& t, at::Tensor& out_x, at::Tensor& out_y);
void tile_select(const TileTensors& t, double lo_x, double hi_x, double lo_y, double hi_y, at::Tensor& out_x,
                 at::Tensor& out_y, at::Tensor& counters);

}  // namespace cuda
}  // namespace ftlens
