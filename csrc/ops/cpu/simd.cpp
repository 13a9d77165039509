#include "ops/cpu/simd.h"

#include <cmath>
#include <cstdlib>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FTLENS_X86 1
#endif

namespace ftlens {
namespace cpu {

namespace {

#ifdef FTLENS_X86
// exp(v - peak) 8 lanes at a time: v - peak = k ln2 + r with |r| <= ln2/2 (ln2 split in two
// parts so k ln2 is exact), exp(r) by Cephes' expf polynomial, 2^k put into the exponent bits.
__attribute__((target("avx2,fma,f16c"))) void exp_shifted_avx2(float* v, int64_t n, float peak) {
  const __m256 shift = _mm256_set1_ps(peak), lowest = _mm256_set1_ps(-87.3365447505f);
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f), half = _mm256_set1_ps(0.5f);
  const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const float coefficients[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 x = _mm256_sub_ps(_mm256_loadu_ps(v + j), shift);
    const __m256 under = _mm256_cmp_ps(x, lowest, _CMP_LT_OQ);  // exp there is below float's normals: 0
    x = _mm256_max_ps(x, lowest);
    const __m256 k = _mm256_floor_ps(_mm256_fmadd_ps(x, log2e, half));
    const __m256 r = _mm256_fnmadd_ps(k, ln2_lo, _mm256_fnmadd_ps(k, ln2_hi, x));
    __m256 p = _mm256_set1_ps(coefficients[0]);
    for (int c = 1; c < 6; ++c) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(coefficients[c]));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, one));
    const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    _mm256_storeu_ps(v + j, _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(exponent))));
  }
  for (; j < n; ++j) v[j] = std::exp(v[j] - peak);
}

__attribute__((target("avx2,fma,f16c"))) void scale_half_row_avx2(const c10::Half* x, const float* s, const float* k,
                                                                  float* o, int64_t d) {
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + j)));
    _mm256_storeu_ps(o + j, _mm256_mul_ps(_mm256_sub_ps(v, _mm256_loadu_ps(s + j)), _mm256_loadu_ps(k + j)));
  }
  for (; j < d; ++j) o[j] = (static_cast<float>(x[j]) - s[j]) * k[j];
}
#endif

}  // namespace

bool has_avx2() {
#ifdef FTLENS_X86
  static const bool available = std::getenv("FTLENS_CPU_BASELINE") == nullptr && __builtin_cpu_supports("avx2") &&
                                __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return available;
#else
  return false;
#endif
}

void scale_half_row(const c10::Half* x, const float* s, const float* k, float* o, int64_t d) {
#ifdef FTLENS_X86
  if (has_avx2()) return scale_half_row_avx2(x, s, k, o, d);
#endif
  for (int64_t j = 0; j < d; ++j) o[j] = (static_cast<float>(x[j]) - s[j]) * k[j];
}

void exp_shifted(float* v, int64_t n, float peak) {
#ifdef FTLENS_X86
  if (has_avx2()) return exp_shifted_avx2(v, n, peak);
#endif
  for (int64_t j = 0; j < n; ++j) v[j] = std::exp(v[j] - peak);
}

}  // namespace cpu
}  // namespace ftlens
