// Plain CUDA kernels of the tile reducers over raw pointers (no ATen here, so that `nvcc -c`
// checks them on a machine without torch's CUDA headers). One thread per pair of a tile;
// sums go to global float64 accumulators with atomics after warp reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "tiles/maps.h"

namespace ftlens {
namespace cuda_kernels {

// One tile: the GEMM outputs [ti, tj] of each side (gy may be null: one side), the squared
// norms of the tile's rows (i) and columns (j), the maps, and where the tile sits.
template <typename T>
struct Tile {
  const T* gx;
  const T* gy;
  const T *axi, *axj, *ayi, *ayj;
  int64_t ti, tj, i0, j0, n;
  bool diagonal;
  int map_x, map_y;
  T gamma_x, gamma_y;
};

// sums[3] += (sum over i != j of k*l, k*k, l*l); rows[n] += off-diagonal row sums; diagonals.
template <typename T>
cudaError_t launch_tile_hsic(const Tile<T>& tile, double shift_x, double shift_y, double* sums, double* row_x,
                             double* row_y, double* diag_x, double* diag_y, cudaStream_t stream);

// sums[6] += (u, v, u*u, v*v, u*v, 1) over pairs i < j: u, v the shifted values, or with
// rank tables (ranks = true) their interpolated ranks minus `shift`.
template <typename T>
cudaError_t launch_tile_pearson(const Tile<T>& tile, double shift_x, double shift_y, bool ranks,
                                tiles::Bins bins_x, tiles::Bins bins_y, double* sums, cudaStream_t stream);

// counts[bins + 2] += per-bin counts of each side; extremes[4] = (min x, max x, min y, max y).
template <typename T>
cudaError_t launch_tile_histogram(const Tile<T>& tile, tiles::Bins bins_x, tiles::Bins bins_y,
                                  unsigned long long* counts_x, unsigned long long* counts_y, double* extremes,
                                  cudaStream_t stream);

// out[pair index] = value of every pair i < j of the tile.
template <typename T>
cudaError_t launch_tile_collect(const Tile<T>& tile, double* out_x, double* out_y, cudaStream_t stream);

// Values in [lo, hi) appended to out (up to capacity; counters[0..1] the number appended per
// side), values below lo counted in counters[2..3].
template <typename T>
cudaError_t launch_tile_select(const Tile<T>& tile, double lo_x, double hi_x, double lo_y, double hi_y, double* out_x,
                               double* out_y, int64_t capacity_x, int64_t capacity_y, unsigned long long* counters,
                               cudaStream_t stream);

}  // namespace cuda_kernels
}  // namespace ftlens
