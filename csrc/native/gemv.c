// The bfloat16 product of gemv.h. oneDNN repacks W on every call, which pays off over
// many rows of x; with one to eight rows each weight is used once per row, so reading W
// once, row by row, in its own layout is what the product costs (on AVX512-BF16 without
// AMX: 1.5-1.9x oneDNN's speed for one row of a 2048x8192 weight). In float32 oneDNN's
// sgemm is as quick or quicker, so float32 stays there.
#include "gemv.h"

#include "../kernels/dispatch.h"
#ifdef __AVX512BF16__
#include <immintrin.h>
#endif

#define MAX_ROWS 8

// Output columns [lo, hi), each one weight row against every row of x.
static void columns(const uint16_t* x, int64_t m, int64_t k, const uint16_t* w, int64_t n,
                    uint16_t* y, int64_t lo, int64_t hi) {
  for (int64_t c = lo; c < hi; c++) {
    const uint16_t* wr = w + c * k;
    float sums[MAX_ROWS] = {0};
    int64_t done = 0;
#ifdef __AVX512BF16__
    __m512 acc[MAX_ROWS];
    for (int64_t r = 0; r < m; r++) acc[r] = _mm512_setzero_ps();
    for (; done + 32 <= k; done += 32) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(wr + done);
      for (int64_t r = 0; r < m; r++)
        acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_loadu_si512(x + r * k + done), wv);
    }
    for (int64_t r = 0; r < m; r++) sums[r] = _mm512_reduce_add_ps(acc[r]);
#endif
    for (int64_t r = 0; r < m; r++) {
      for (int64_t i = done; i < k; i++) sums[r] += bf16_to_f32(x[r * k + i]) * bf16_to_f32(wr[i]);
      y[r * n + c] = f32_to_bf16(sums[r]);
    }
  }
}

void gemv_rows_bf16(const uint16_t* x, int64_t m, int64_t k, const uint16_t* w, int64_t n,
                    uint16_t* y) {
#pragma omp parallel if (n * k >= PARALLEL_MIN)
  {
    int64_t lo, hi;
    thread_range(n, &lo, &hi);
    columns(x, m, k, w, n, y, lo, hi);
  }
}
