// Row kernels with an AVX2 twin chosen at run time: the module is compiled for the baseline
// x86-64 (a wheel must run anywhere), where a float16 conversion and an exp are scalar
// library calls; on processors with AVX2, FMA and F16C these run 8 lanes wide.
#pragma once

#include <c10/util/Half.h>

#include <cstdint>

namespace ftlens {
namespace cpu {

// Whether this processor has AVX2, FMA and F16C (checked once; the environment variable
// FTLENS_CPU_BASELINE forces the baseline twins, e.g. to compare them).
bool has_avx2();

// o[j] = (float(x[j]) - s[j]) * k[j] for j < d; the same value in both twins.
void scale_half_row(const c10::Half* x, const float* s, const float* k, float* o, int64_t d);

// v[j] = exp(v[j] - peak) for j < n, where every v[j] <= peak. The AVX2 twin: a degree-6
// polynomial after range reduction (Cephes' expf), within 2 ulp of exp, and 0 where exp
// is below float's smallest normal (1.2e-38); the baseline: std::exp.
void exp_shifted(float* v, int64_t n, float peak);

#if defined(__x86_64__) && defined(__GNUC__)
template <typename Body>
__attribute__((target("avx2"))) void run_avx2(Body& body) {
  body();  // inlined (always_inline) and vectorized here, 4 float64 lanes per register
}
#endif

// Runs `body` (a lambda marked FTLENS_WIDE) compiled for AVX2 where the processor has it,
// else for the baseline (2 float64 lanes). AVX2 without FMA: no multiply-add is fused, so
// both twins round alike and give bit-identical results.
template <typename Body>
void run_wide(Body&& body) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (has_avx2()) return run_avx2(body);
#endif
  body();
}

}  // namespace cpu
}  // namespace ftlens

// Marks a lambda for run_wide: inlined into the twin that calls it, so it is compiled there.
#define FTLENS_WIDE __attribute__((always_inline))
