// What the CPU and CUDA tile reducers share: the map of a pair's inner product to its
// kernel or dissimilarity value, and the bins and interpolated ranks of the rank sketch.
// Plain C++ (host and device), so that `nvcc -c` compiles it without torch.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define FTLENS_HD __host__ __device__
#else
#define FTLENS_HD
#endif

namespace ftlens {
namespace tiles {

// The closed sets the engine takes (bound as the enums _C.PairMap and _C.Reducer).
enum Map { kLinear, kOneMinus, kSqEuclidean, kEuclidean, kRbf };
enum Reducer { kHsic, kPearson, kHistogram, kRanks, kCollect, kSelect };

FTLENS_HD inline double clamp01(double v) { return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v); }

// exp and sqrt in T's own precision, on the host (std::) and on the device (CUDA's overloads).
template <typename T>
FTLENS_HD inline T exp_of(T v) {
#ifdef __CUDA_ARCH__
  return exp(v);
#else
  return std::exp(v);
#endif
}

template <typename T>
FTLENS_HD inline T sqrt_of(T v) {
#ifdef __CUDA_ARCH__
  return sqrt(v);
#else
  return std::sqrt(v);
#endif
}

// The value of pair (i, j) from g = <x_i, x_j> and the squared norms; `same` marks i == j,
// whose distance is exactly 0 whatever the GEMM's rounding.
template <typename T>
FTLENS_HD inline T pair_value(int map, T g, T ai, T aj, T gamma, bool same) {
  if (map == kLinear) return g;
  if (map == kOneMinus) return same ? T(0) : T(1) - g;
  T d2 = same ? T(0) : ai + aj - T(2) * g;
  d2 = d2 > T(0) ? d2 : T(0);
  if (map == kSqEuclidean) return d2;
  if (map == kEuclidean) return sqrt_of(d2);
  return exp_of(-gamma * d2);
}

// Equal bins over [lo, hi) with one bin below (0) and one from hi up (bins + 1); for
// ranks, the values per bin (counts), the values before each bin (base) and the extremes.
struct Bins {
  double lo = 0.0, hi = 0.0, width = 1.0, min = 0.0, max = 0.0;
  int64_t bins = 0;
  const double* counts = nullptr;
  const double* base = nullptr;
};

FTLENS_HD inline int64_t bin_of(double v, const Bins& b) {
  if (v < b.lo) return 0;
  const double at = (v - b.lo) / b.width;
  return at >= static_cast<double>(b.bins) ? b.bins + 1 : 1 + static_cast<int64_t>(at);
}

// The interpolated rank of v (1-based; ties get their mid-rank): the values before its bin,
// plus its place inside the bin read linearly between the bin's edges. It lies among the
// same counts[bin] ranks as v's exact mid-rank.
FTLENS_HD inline double rank_of(double v, const Bins& b) {
  const int64_t k = bin_of(v, b);
  const double e0 = k == 0 ? b.min : k == b.bins + 1 ? b.hi : b.lo + static_cast<double>(k - 1) * b.width;
  const double e1 = k == 0 ? b.lo : k == b.bins + 1 ? b.max : b.lo + static_cast<double>(k) * b.width;
  const double frac = e1 > e0 ? clamp01((v - e0) / (e1 - e0)) : 0.5;
  return b.base[k] + 0.5 + b.counts[k] * frac;
}

// The row-major index of pair (i, j), i < j, among the n(n - 1)/2 pairs.
FTLENS_HD inline int64_t pair_index(int64_t i, int64_t j, int64_t n) { return i * n - i * (i + 1) / 2 + (j - i - 1); }

}  // namespace tiles
}  // namespace ftlens
