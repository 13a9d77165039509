// Thin ATen launchers of the CUDA tile reducers.
#include "tiles/cuda/launch_tiles.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "ops/cuda/launch.h"
#include "tiles/cuda/tile_kernels.cuh"

namespace ftlens {
namespace cuda {
namespace {

template <typename T>
const T* maybe(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <typename T>
cuda_kernels::Tile<T> raw(const TileTensors& t) {
  return {t.gx.data_ptr<T>(), maybe<T>(t.gy),  t.axi.data_ptr<T>(), t.axj.data_ptr<T>(),
          maybe<T>(t.ayi),    maybe<T>(t.ayj), t.gx.size(0),        t.gx.size(1),
          t.i0,               t.j0,            t.n,                 t.diagonal,
          t.map_x,            t.map_y,         static_cast<T>(t.gamma_x), static_cast<T>(t.gamma_y)};
}

unsigned long long* counts(at::Tensor& t) {  // int64 storage read as the kernels' unsigned counters
  return t.defined() ? reinterpret_cast<unsigned long long*>(t.data_ptr<int64_t>()) : nullptr;
}

double* doubles(at::Tensor& t) { return t.defined() ? t.data_ptr<double>() : nullptr; }

// Runs f(Tile<T>, stream) for the tile's dtype on its device's current stream.
template <typename F>
void on_device(const TileTensors& t, const char* op, F&& f) {
  const c10::cuda::CUDAGuard guard(t.gx.device());
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(t.gx.scalar_type(), "pair_tile_cuda", [&] { check(f(raw<scalar_t>(t), stream), op); });
}

}  // namespace

void tile_hsic(const TileTensors& t, double shift_x, double shift_y, at::Tensor& sums, at::Tensor& row_x,
               at::Tensor& row_y, at::Tensor& diag_x, at::Tensor& diag_y) {
  on_device(t, "pair tiles (hsic)", [&](auto tile, cudaStream_t stream) {
    return cuda_kernels::launch_tile_hsic(tile, shift_x, shift_y, doubles(sums), doubles(row_x), doubles(row_y),
                                          doubles(diag_x), doubles(diag_y), stream);
  });
}

void tile_pearson(const TileTensors& t, double shift_x, double shift_y, bool ranks, const tiles::Bins& bins_x,
                  const tiles::Bins& bins_y, at::Tensor& sums) {
  on_device(t, "pair tiles (pearson)", [&](auto tile, cudaStream_t stream) {
    return cuda_kernels::launch_tile_pearson(tile, shift_x, shift_y, ranks, bins_x, bins_y, doubles(sums), stream);
  });
}

void tile_histogram(const TileTensors& t, const tiles::Bins& bins_x, const tiles::Bins& bins_y, at::Tensor& counts_x,
                    at::Tensor& counts_y, at::Tensor& extremes) {
  on_device(t, "pair tiles (histogram)", [&](auto tile, cudaStream_t stream) {
    return cuda_kernels::launch_tile_histogram(tile, bins_x, bins_y, counts(counts_x), counts(counts_y),
                                               doubles(extremes), stream);
  });
}

void tile_collect(const TileTensors& t, at::Tensor& out_x, at::Tensor& out_y) {
  on_device(t, "pair tiles (collect)", [&](auto tile, cudaStream_t stream) {
    return cuda_kernels::launch_tile_collect(tile, doubles(out_x), doubles(out_y), stream);
  });
}

void tile_select(const TileTensors& t, double lo_x, double hi_x, double lo_y, double hi_y, at::Tensor& out_x,
                 at::Tensor& out_y, at::Tensor& counters) {
  on_device(t, "pair tiles (select)", [&](auto tile, cudaStream_t stream) {
    return cuda_kernels::launch_tile_select(tile, lo_x, hi_x, lo_y, hi_y, doubles(out_x), doubles(out_y),
                                            out_x.numel(), out_y.defined() ? out_y.numel() : 0, counts(counters),
                                            stream);
  });
}

}  // namespace cuda
}  // namespace ftlens
