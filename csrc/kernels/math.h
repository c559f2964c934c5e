// Scalar math for the kernels, written out so that loops over it vectorize and so that
// targets without a C library (wasm32) get the same results as native builds.
#pragma once
#include <stdint.h>

#include "half.h"

// e^x in float32 to about one ulp: x = n ln2 + r with |r| <= ln2/2, then a degree-7
// Taylor polynomial for e^r scaled by 2^n. Underflows to 0 below -87.3 (no subnormals),
// overflows to +inf above 88.7, and propagates NaN: the clamps below are comparisons a NaN
// fails, so it passes them untouched, and n reaches the exponent bits through the rounding
// constant's mantissa rather than a float-to-int conversion, which C leaves undefined
// for NaN.
static inline float exp_f32(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  float big = x > 88.72f;
  float xc = x > 88.0f ? 88.0f : x;
  xc = xc < -88.0f ? -88.0f : xc;
  const float shifted = xc * log2e + 12582912.0f;  // round to nearest: n in the low bits
  float n = shifted - 12582912.0f;
  float r = xc - n * ln2_hi - n * ln2_lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  float scale = bits_to_f32((f32_to_bits(shifted) - 0x4b400000u + 127u) << 23);
  float y = p * scale;
  y = x < -87.3f ? 0.0f : y;
  return big != 0.0f ? bits_to_f32(0x7f800000u) : y;
}

// v with float32 subnormals (magnitude below 2^-126) replaced by a zero of the same sign.
// Products on x86 slow down several times on subnormal operands (microcode assists), and
// a loss gradient is full of them: g·e^(x - lse) over a large vocabulary reaches 1e-41.
static inline float flush_subnormal(float v) {
  const uint32_t b = f32_to_bits(v);
  return (b & 0x7fffffffu) < 0x00800000u ? bits_to_f32(b & 0x80000000u) : v;
}

// Natural logarithm in float64: log m + e ln2 with m in [sqrt(1/2), sqrt(2)) from the
// atanh series, which converges fast there. The kernels call it on sums of exponentials,
// normally >= 1, but a sum is 0 over no terms, NaN when a term is, and the bit split below
// only holds for positive normal numbers: the rest get IEEE's answers as Math.log does.
static inline double log_f64(double x) {
  if (!(x >= 0x1p-1022 && x <= 0x1.fffffffffffffp+1023)) {
    if (x == 0) return -__builtin_inf();
    if (!(x > 0)) return __builtin_nan("");  // NaN or negative
    if (x > 1) return x;                      // +inf
    return log_f64(x * 0x1p54) - 54 * 0.6931471805599453;  // subnormal
  }
  uint64_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double m;
  __builtin_memcpy(&m, &bits, sizeof m);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  double series = 1.0 / 19;
  for (int k = 17; k >= 1; k -= 2) series = series * s2 + 1.0 / k;
  return 2.0 * s * series + e * 0.6931471805599453;
}

static inline float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }
