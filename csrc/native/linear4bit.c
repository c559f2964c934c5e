// The 4-bit product of linear4bit.h. Decoding multiplies each weight once per token, so
// what costs is reading the weight: here a weight is read as its packed half byte and
// turned into a float in a register (a 16-entry code lookup is one permute on AVX-512),
// instead of being written out at full precision and read back by a GEMM.
#include "linear4bit.h"

#include <stdlib.h>

#include "../kernels/dispatch.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

// Rows of x widened to float32, each 32-element group reordered as its 16 even-indexed
// then its 16 odd-indexed elements: the order in which the high and low nibbles of 16
// packed bytes come out.
static float* split_rows(float_dtype dt, const void* x, int64_t m, int64_t k) {
  float* xs = malloc((size_t)(m * k) * sizeof(float));
  if (xs == NULL) return NULL;
  for (int64_t r = 0; r < m; r++)
    for (int64_t g = 0; g < k; g += 32)
      for (int64_t i = 0; i < 16; i++) {
        xs[r * k + g + i] = load_f(x, dt, r * k + g + 2 * i);
        xs[r * k + g + 16 + i] = load_f(x, dt, r * k + g + 2 * i + 1);
      }
  return xs;
}

#ifdef __AVX512F__
static inline __m512 round_vec(float_dtype dt, __m512 v) {
  if (dt == DT_F16) return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  if (dt != DT_BF16) return v;
  // Round to nearest even on the upper 16 bits, as f32_to_bf16 does for finite values.
  __m512i b = _mm512_castps_si512(v);
  __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  b = _mm512_add_epi32(b, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
  return _mm512_castsi512_ps(_mm512_and_si512(b, _mm512_set1_epi32((int)0xffff0000u)));
}
#endif

#define MAX_ROWS 8

// Output columns [lo, hi): one weight row each, against every row of x.
static void rows_range(float_dtype dt, const float* xs, int64_t m, int64_t k,
                       const uint8_t* packed, const float* code, const float* absmax,
                       int64_t blocksize, int64_t n, void* y, int64_t lo, int64_t hi) {
#ifdef __AVX512F__
  const __m512 table = _mm512_loadu_ps(code);
  for (int64_t c = lo; c < hi; c++) {
    __m512 acc[MAX_ROWS];
    for (int64_t r = 0; r < m; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t g = 0; g < k; g += 32) {
      const int64_t j = c * k + g;
      const __m512 scale = _mm512_set1_ps(absmax[j / blocksize]);
      const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(packed + j / 2)));
      const __m512 hi_w = round_vec(
          dt, _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table), scale));
      const __m512 lo_w = round_vec(
          dt, _mm512_mul_ps(
                  _mm512_permutexvar_ps(_mm512_and_si512(bytes, _mm512_set1_epi32(15)), table),
                  scale));
      for (int64_t r = 0; r < m; r++) {
        acc[r] = _mm512_fmadd_ps(hi_w, _mm512_loadu_ps(xs + r * k + g), acc[r]);
        acc[r] = _mm512_fmadd_ps(lo_w, _mm512_loadu_ps(xs + r * k + g + 16), acc[r]);
      }
    }
    for (int64_t r = 0; r < m; r++) store_f(y, dt, r * n + c, _mm512_reduce_add_ps(acc[r]));
  }
#else
  for (int64_t c = lo; c < hi; c++) {
    float acc[MAX_ROWS] = {0};
    for (int64_t g = 0; g < k; g += 32) {
      const int64_t j = c * k + g;
      const float scale = absmax[j / blocksize];
      for (int64_t i = 0; i < 16; i++) {
        const uint8_t byte = packed[j / 2 + i];
        const float hi_w = round_to(dt, code[byte >> 4] * scale);
        const float lo_w = round_to(dt, code[byte & 15] * scale);
        for (int64_t r = 0; r < m; r++)
          acc[r] += hi_w * xs[r * k + g + i] + lo_w * xs[r * k + g + 16 + i];
      }
    }
    for (int64_t r = 0; r < m; r++) store_f(y, dt, r * n + c, acc[r]);
  }
#endif
}

int linear_4bit_rows(float_dtype dt, const void* x, int64_t m, int64_t k, const uint8_t* packed,
                     const float* code, const float* absmax, int64_t blocksize, int64_t n,
                     void* y) {
  float* xs = split_rows(dt, x, m, k);
  if (xs == NULL) return -1;
#pragma omp parallel
  {
    int64_t lo, hi;
    thread_range(n, &lo, &hi);
    rows_range(dt, xs, m, k, packed, code, absmax, blocksize, n, y, lo, hi);
  }
  free(xs);
  return 0;
}
