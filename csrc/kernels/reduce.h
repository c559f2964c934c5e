// Float reductions in independent lanes. The compiler may not reorder additions (or
// comparisons, for NaN's sake) into one accumulator, so a plain loop stays scalar; one
// accumulator per lane vectorizes. Each takes the dtype as the kernels' range functions
// do, so that a constant dtype specializes it after inlining.
#pragma once
#include <stdint.h>

#include "dispatch.h"
#include "half.h"
#include "math.h"

#define LANES 16

// The largest of x[at .. at + n); -inf when n is 0. A NaN never wins a comparison: it
// reaches a softmax's result through the sum of exponentials instead (e^(x - max) is NaN
// for a NaN x whatever the max), which costs nothing here. Tracking NaN lanes as well
// would make this a NaN-propagating max, but measured under GCC that made cross-entropy's
// forward 1.5x as long. A caller that takes a max of -inf for "no values" must look for
// NaN itself: a row of NaN and -inf has that max too.
KERNEL float lanes_max(float_dtype dt, const void* x, int64_t at, int64_t n) {
  float lane[LANES];
  for (int l = 0; l < LANES; l++) lane[l] = -__builtin_inff();
  int64_t c = 0;
  for (; c + LANES <= n; c += LANES)
    for (int l = 0; l < LANES; l++) {
      const float v = load_f(x, dt, at + c + l);
      lane[l] = v > lane[l] ? v : lane[l];
    }
  float max = -__builtin_inff();
  for (; c < n; c++) {
    const float v = load_f(x, dt, at + c);
    max = v > max ? v : max;
  }
  for (int l = 0; l < LANES; l++) max = lane[l] > max ? lane[l] : max;
  return max;
}

// The sum of e^(x - shift) over x[at .. at + n): float32 lanes within blocks of 256
// elements, the blocks added in float64.
KERNEL double lanes_sum_exp(float_dtype dt, const void* x, int64_t at, int64_t n, float shift) {
  double sum = 0;
  for (int64_t c0 = 0; c0 < n; c0 += 256) {
    const int64_t c1 = c0 + 256 < n ? c0 + 256 : n;
    float part[LANES] = {0};
    int64_t c = c0;
    for (; c + LANES <= c1; c += LANES)
      for (int l = 0; l < LANES; l++) part[l] += exp_f32(load_f(x, dt, at + c + l) - shift);
    float rest = 0;
    for (; c < c1; c++) rest += exp_f32(load_f(x, dt, at + c) - shift);
    for (int l = 0; l < LANES; l++) rest += part[l];
    sum += rest;
  }
  return sum;
}

// x · y over n float32 elements.
KERNEL float lanes_dot(const float* x, const float* y, int64_t n) {
  float part[LANES] = {0};
  int64_t c = 0;
  for (; c + LANES <= n; c += LANES)
    for (int l = 0; l < LANES; l++) part[l] += x[c + l] * y[c + l];
  float sum = 0;
  for (; c < n; c++) sum += x[c] * y[c];
  for (int l = 0; l < LANES; l++) sum += part[l];
  return sum;
}

#define LANES_F64 8

// The sum of (x[at + j] - shift)^(1 or 2) over j < n, in float64 lanes: the sums of a
// normalisation's statistics.
KERNEL double lanes_sum_f64(float_dtype dt, const void* x, int64_t at, int64_t n, double shift,
                            int square) {
  double part[LANES_F64] = {0};
  int64_t c = 0;
  for (; c + LANES_F64 <= n; c += LANES_F64)
    for (int l = 0; l < LANES_F64; l++) {
      const double d = load_f(x, dt, at + c + l) - shift;
      part[l] += square ? d * d : d;
    }
  double sum = 0;
  for (; c < n; c++) {
    const double d = load_f(x, dt, at + c) - shift;
    sum += square ? d * d : d;
  }
  for (int l = 0; l < LANES_F64; l++) sum += part[l];
  return sum;
}

// x · y over n float64 elements (the sum of x when y is NULL), in float64 lanes.
KERNEL double lanes_dot_f64(const double* x, const double* y, int64_t n) {
  double part[LANES_F64] = {0};
  int64_t c = 0;
  for (; c + LANES_F64 <= n; c += LANES_F64)
    for (int l = 0; l < LANES_F64; l++) part[l] += y == NULL ? x[c + l] : x[c + l] * y[c + l];
  double sum = 0;
  for (; c < n; c++) sum += y == NULL ? x[c] : x[c] * y[c];
  for (int l = 0; l < LANES_F64; l++) sum += part[l];
  return sum;
}
