// Rotary embedding in the half-rotation layout, forward and its transpose (backward),
// computed in float64 like the reference kernel so each output rounds once.
#include "dispatch.h"
#include "kernels.h"

KERNEL void rope_rows(float_dtype dt, const void* x, const void* cos, const void* sin,
                      int64_t heads, int64_t seq, int64_t dim, int64_t cos_batch, int inverse,
                      void* y, int64_t lo, int64_t hi) {
  const int64_t half = dim / 2;
  for (int64_t row = lo; row < hi; row++) {
    const int64_t b = row / (heads * seq), t = row % seq;
    const int64_t at = row * dim, tab = ((cos_batch == 1 ? 0 : b) * seq + t) * dim;
    for (int64_t i = 0; i < half; i++) {
      double x1 = load_f(x, dt, at + i), x2 = load_f(x, dt, at + i + half);
      double c1 = load_f(cos, dt, tab + i), c2 = load_f(cos, dt, tab + i + half);
      double s1 = load_f(sin, dt, tab + i), s2 = load_f(sin, dt, tab + i + half);
      double y1 = inverse ? x1 * c1 + x2 * s2 : x1 * c1 - x2 * s1;
      double y2 = inverse ? x2 * c2 - x1 * s1 : x2 * c2 + x1 * s2;
      store_f(y, dt, at + i, (float)y1);
      store_f(y, dt, at + i + half, (float)y2);
    }
  }
}

void rope_apply(float_dtype dt, const void* x, const void* cos, const void* sin, int64_t batch,
                int64_t heads, int64_t seq, int64_t dim, int64_t cos_batch, int inverse, void* y) {
  const int64_t rows = batch * heads * seq;
#define CALL(D, lo, hi) rope_rows(D, x, cos, sin, heads, seq, dim, cos_batch, inverse, y, lo, hi)
  PARALLEL_FOR_DTYPE(dt, rows, rows * dim, CALL)
#undef CALL
}
