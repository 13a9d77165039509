// Float64 reductions in independent partial sums, so that the compiler can vectorize
// them (one running sum would serialize every addition behind the previous one).
#pragma once

#include <cstdint>

namespace ftlens {
namespace cpu {

constexpr int64_t kLanes = 8;

inline double lane_total(const double* lanes) {
  double total = 0.0;
  for (int64_t k = 0; k < kLanes; ++k) total += lanes[k];
  return total;
}

// sum_j (x_j - shift)^power for power 1 or 2.
template <typename In>
inline __attribute__((always_inline)) double shifted_power_sum(const In* __restrict__ xr, int64_t d, double shift, int power) {
  double lanes[kLanes] = {0.0};
  int64_t j = 0;
  for (; j + kLanes <= d; j += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) {
      const double c = static_cast<double>(xr[j + k]) - shift;
      lanes[k] += power == 1 ? c : c * c;
    }
  }
  for (; j < d; ++j) {
    const double c = static_cast<double>(xr[j]) - shift;
    lanes[0] += power == 1 ? c : c * c;
  }
  return lane_total(lanes);
}

}  // namespace cpu
}  // namespace ftlens
