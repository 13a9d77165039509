// Plain CUDA kernels of the tile reducers (see tile_kernels.cuh).
#include "tiles/cuda/tile_kernels.cuh"

namespace ftlens {
namespace cuda_kernels {
namespace {

constexpr int kCols = 32;  // threads along a tile row: one warp
constexpr int kRows = 8;   // warps per block, one tile row each

__device__ inline double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

__device__ inline double warp_min(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmin(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

__device__ inline double warp_max(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmax(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

__device__ inline void atomic_min(double* at, double v) {
  auto* bits = reinterpret_cast<unsigned long long*>(at);
  unsigned long long old = *bits;
  while (v < __longlong_as_double(static_cast<long long>(old))) {
    const unsigned long long seen = atomicCAS(bits, old, static_cast<unsigned long long>(__double_as_longlong(v)));
    if (seen == old) break;
    old = seen;
  }
}

__device__ inline void atomic_max(double* at, double v) {
  auto* bits = reinterpret_cast<unsigned long long*>(at);
  unsigned long long old = *bits;
  while (v > __longlong_as_double(static_cast<long long>(old))) {
    const unsigned long long seen = atomicCAS(bits, old, static_cast<unsigned long long>(__double_as_longlong(v)));
    if (seen == old) break;
    old = seen;
  }
}

// This thread's pair of the tile: (a, b), whether it is one (inside, and b >= a on the
// diagonal tile), whether it is the diagonal i == j, and its two values.
template <typename T>
struct Pair {
  int64_t a, b;
  bool valid, same;
  double vx, vy;
  __device__ explicit Pair(const Tile<T>& t) {
    a = static_cast<int64_t>(blockIdx.y) * kRows + threadIdx.y;
    b = static_cast<int64_t>(blockIdx.x) * kCols + threadIdx.x;
    valid = a < t.ti && b < t.tj && (!t.diagonal || b >= a);
    same = t.diagonal && a == b;
    vx = vy = 0.0;
    if (!valid) return;
    const int64_t at = a * t.tj + b;
    vx = tiles::pair_value<T>(t.map_x, t.gx[at], t.axi[a], t.axj[b], t.gamma_x, same);
    if (t.gy) vy = tiles::pair_value<T>(t.map_y, t.gy[at], t.ayi[a], t.ayj[b], t.gamma_y, same);
  }
  __device__ bool off_diagonal() const { return valid && !same; }
};

template <typename T>
__global__ void hsic_kernel(Tile<T> t, double cx, double cy, double* sums, double* row_x, double* row_y,
                            double* diag_x, double* diag_y) {
  __shared__ double col_x[kRows][kCols], col_y[kRows][kCols];
  const Pair<T> p(t);
  const double k = p.off_diagonal() ? p.vx - cx : 0.0, l = p.off_diagonal() ? p.vy - cy : 0.0;
  if (p.valid && p.same) diag_x[t.i0 + p.a] = p.vx - cx, diag_y[t.i0 + p.a] = p.vy - cy;
  const double kl = warp_sum(2 * k * l), kk = warp_sum(2 * k * k), ll = warp_sum(2 * l * l);
  const double rk = warp_sum(k), rl = warp_sum(l);  // one warp = one tile row
  if (threadIdx.x == 0) {
    atomicAdd(sums, kl), atomicAdd(sums + 1, kk), atomicAdd(sums + 2, ll);
    if (p.a < t.ti) atomicAdd(row_x + t.i0 + p.a, rk), atomicAdd(row_y + t.i0 + p.a, rl);
  }
  col_x[threadIdx.y][threadIdx.x] = k, col_y[threadIdx.y][threadIdx.x] = l;
  __syncthreads();
  if (threadIdx.y == 0 && p.b < t.tj) {
    double sx = 0.0, sy = 0.0;
    for (int r = 0; r < kRows; ++r) sx += col_x[r][threadIdx.x], sy += col_y[r][threadIdx.x];
    atomicAdd(row_x + t.j0 + p.b, sx), atomicAdd(row_y + t.j0 + p.b, sy);
  }
}

template <typename T>
__global__ void pearson_kernel(Tile<T> t, double cx, double cy, bool ranks, tiles::Bins bx, tiles::Bins by,
                               double* sums) {
  const Pair<T> p(t);
  double u = 0.0, v = 0.0, one = 0.0;
  if (p.off_diagonal()) {
    u = (ranks ? tiles::rank_of(p.vx, bx) : p.vx) - cx;
    v = (ranks ? tiles::rank_of(p.vy, by) : p.vy) - cy;
    one = 1.0;
  }
  const double s[6] = {warp_sum(u), warp_sum(v), warp_sum(u * u), warp_sum(v * v), warp_sum(u * v), warp_sum(one)};
  if (threadIdx.x == 0)
    for (int k = 0; k < 6; ++k) atomicAdd(sums + k, s[k]);
}

template <typename T>
__global__ void histogram_kernel(Tile<T> t, tiles::Bins bx, tiles::Bins by, unsigned long long* counts_x,
                                 unsigned long long* counts_y, double* extremes) {
  const Pair<T> p(t);
  const bool counted = p.off_diagonal();
  if (counted) atomicAdd(counts_x + tiles::bin_of(p.vx, bx), 1ULL);
  if (counted && counts_y) atomicAdd(counts_y + tiles::bin_of(p.vy, by), 1ULL);
  const double inf = 1.0 / 0.0;
  const double lo_x = warp_min(counted ? p.vx : inf), hi_x = warp_max(counted ? p.vx : -inf);
  const double lo_y = warp_min(counted ? p.vy : inf), hi_y = warp_max(counted ? p.vy : -inf);
  if (threadIdx.x == 0) {
    atomic_min(extremes, lo_x), atomic_max(extremes + 1, hi_x);
    if (counts_y) atomic_min(extremes + 2, lo_y), atomic_max(extremes + 3, hi_y);
  }
}

template <typename T>
__global__ void collect_kernel(Tile<T> t, double* out_x, double* out_y) {
  const Pair<T> p(t);
  if (!p.off_diagonal()) return;
  const int64_t at = tiles::pair_index(t.i0 + p.a, t.j0 + p.b, t.n);
  out_x[at] = p.vx;
  if (out_y) out_y[at] = p.vy;
}

template <typename T>
__global__ void select_kernel(Tile<T> t, double lo_x, double hi_x, double lo_y, double hi_y, double* out_x,
                              double* out_y, int64_t capacity_x, int64_t capacity_y, unsigned long long* counters) {
  const Pair<T> p(t);
  if (!p.off_diagonal()) return;
  if (p.vx < lo_x) {
    atomicAdd(counters + 2, 1ULL);
  } else if (p.vx < hi_x) {
    const unsigned long long at = atomicAdd(counters, 1ULL);
    if (at < static_cast<unsigned long long>(capacity_x)) out_x[at] = p.vx;
  }
  if (!out_y) return;
  if (p.vy < lo_y) {
    atomicAdd(counters + 3, 1ULL);
  } else if (p.vy < hi_y) {
    const unsigned long long at = atomicAdd(counters + 1, 1ULL);
    if (at < static_cast<unsigned long long>(capacity_y)) out_y[at] = p.vy;
  }
}

template <typename T>
dim3 grid_of(const Tile<T>& t) {
  return dim3(static_cast<unsigned>((t.tj + kCols - 1) / kCols), static_cast<unsigned>((t.ti + kRows - 1) / kRows));
}

const dim3 kBlock(kCols, kRows);

}  // namespace

template <typename T>
cudaError_t launch_tile_hsic(const Tile<T>& tile, double shift_x, double shift_y, double* sums, double* row_x,
                             double* row_y, double* diag_x, double* diag_y, cudaStream_t stream) {
  hsic_kernel<T><<<grid_of(tile), kBlock, 0, stream>>>(tile, shift_x, shift_y, sums, row_x, row_y, diag_x, diag_y);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_tile_pearson(const Tile<T>& tile, double shift_x, double shift_y, bool ranks,
                                tiles::Bins bins_x, tiles::Bins bins_y, double* sums, cudaStream_t stream) {
  pearson_kernel<T><<<grid_of(tile), kBlock, 0, stream>>>(tile, shift_x, shift_y, ranks, bins_x, bins_y, sums);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_tile_histogram(const Tile<T>& tile, tiles::Bins bins_x, tiles::Bins bins_y,
                                  unsigned long long* counts_x, unsigned long long* counts_y, double* extremes,
                                  cudaStream_t stream) {
  histogram_kernel<T><<<grid_of(tile), kBlock, 0, stream>>>(tile, bins_x, bins_y, counts_x, counts_y, extremes);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_tile_collect(const Tile<T>& tile, double* out_x, double* out_y, cudaStream_t stream) {
  collect_kernel<T><<<grid_of(tile), kBlock, 0, stream>>>(tile, out_x, out_y);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_tile_select(const Tile<T>& tile, double lo_x, double hi_x, double lo_y, double hi_y, double* out_x,
                               double* out_y, int64_t capacity_x, int64_t capacity_y, unsigned long long* counters,
                               cudaStream_t stream) {
  select_kernel<T><<<grid_of(tile), kBlock, 0, stream>>>(tile, lo_x, hi_x, lo_y, hi_y, out_x, out_y, capacity_x,
                                                         capacity_y, counters);
  return cudaGetLastError();
}

#define FTLENS_TILE_KERNELS(T)                                                                                       \
  template cudaError_t launch_tile_hsic<T>(const Tile<T>&, double, double, double*, double*, double*, double*,     \
                                           double*, cudaStream_t);                                                   \
  template cudaError_t launch_tile_pearson<T>(const Tile<T>&, double, double, bool, tiles::Bins, tiles::Bins,       \
                                              double*, cudaStream_t);                                                \
  template cudaError_t launch_tile_histogram<T>(const Tile<T>&, tiles::Bins, tiles::Bins, unsigned long long*,      \
                                                unsigned long long*, double*, cudaStream_t);                         \
  template cudaError_t launch_tile_collect<T>(const Tile<T>&, double*, double*, cudaStream_t);                       \
  template cudaError_t launch_tile_select<T>(const Tile<T>&, double, double, double, double, double*, double*,      \
                                             int64_t, int64_t, unsigned long long*, cudaStream_t);

FTLENS_TILE_KERNELS(float)
FTLENS_TILE_KERNELS(double)

}  // namespace cuda_kernels
}  // namespace ftlens
