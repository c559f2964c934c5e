// 4-bit blockwise dequantisation (bitsandbytes' layout), a block of rows at a time into
// the GEMM: each value is code[nibble] · absmax[block] in float32, rounded to the
// output dtype. Blocks split across threads.
#include "dispatch.h"
#include "kernels.h"

#ifdef __AVX512F__
#include <immintrin.h>

// float32 to bfloat16 as f32_to_bf16 rounds: to nearest even, NaN to 0x7fc0.
static inline __m256i bf16_of(__m512 v) {
  const __m512i x = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
  const __m512i bias = _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, bias), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
  return _mm512_cvtepi32_epi16(r);
}

// The 32 values of 16 packed bytes (high nibble first) into out[at ..), float32 or
// bfloat16: the code lookup is one permute, and the two nibbles' values are interleaved
// back into element order.
static inline void dequant32(float_dtype dt, const uint8_t* bytes, __m512 table, __m512 scale,
                             void* out, int64_t at) {
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)bytes));
  const __m512 hi = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), table), scale);
  const __m512 lo = _mm512_mul_ps(
      _mm512_permutexvar_ps(_mm512_and_si512(b, _mm512_set1_epi32(15)), table), scale);
  const __m512i first = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i second =
      _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const __m512 v0 = _mm512_permutex2var_ps(hi, first, lo);
  const __m512 v1 = _mm512_permutex2var_ps(hi, second, lo);
  if (dt == DT_BF16) {
    _mm256_storeu_si256((__m256i*)((uint16_t*)out + at), bf16_of(v0));
    _mm256_storeu_si256((__m256i*)((uint16_t*)out + at + 16), bf16_of(v1));
  } else {
    _mm512_storeu_ps((float*)out + at, v0);
    _mm512_storeu_ps((float*)out + at + 16, v1);
  }
}
#endif

// Element j of the packed weight: code[nibble] * scale, rounded to dt.
KERNEL void dequant_one(float_dtype dt, const uint8_t* packed, const float* code, float scale,
                        void* out, int64_t j, int64_t at) {
  const uint8_t byte = packed[j >> 1];
  store_f(out, dt, at, code[(j & 1) ? byte & 15 : byte >> 4] * scale);
}

KERNEL void dequant_blocks(float_dtype dt, const uint8_t* packed, const float* code,
                           const float* absmax, int64_t blocksize, int64_t start, int64_t count,
                           void* out, int64_t first, int64_t lo, int64_t hi) {
  for (int64_t b = first + lo; b < first + hi; b++) {
    const int64_t j0 = b * blocksize > start ? b * blocksize : start;
    const int64_t j1 = (b + 1) * blocksize < start + count ? (b + 1) * blocksize : start + count;
    const float scale = absmax[b];
    int64_t j = j0;
#ifdef __AVX512F__
    // float16 stays on the scalar loop, whose NaN bits the hardware conversion would not keep.
    if (dt != DT_F16) {
      // An odd start begins with a low nibble: one element alone, then whole bytes.
      if (j & 1) {
        dequant_one(dt, packed, code, scale, out, j, j - start);
        j++;
      }
      const __m512 table = _mm512_loadu_ps(code), s = _mm512_set1_ps(scale);
      for (; j + 32 <= j1; j += 32)
        dequant32(dt, packed + (j >> 1), table, s, out, j - start);
    }
#endif
    for (; j < j1; j++) dequant_one(dt, packed, code, scale, out, j, j - start);
  }
}

void dequantize_4bit(float_dtype dt, const uint8_t* packed, const float* code, const float* absmax,
                     int64_t blocksize, int64_t start, int64_t count, void* out) {
  if (count <= 0) return;
  const int64_t first = start / blocksize, blocks = (start + count - 1) / blocksize - first + 1;
#define CALL(D, lo, hi) \
  dequant_blocks(D, packed, code, absmax, blocksize, start, count, out, first, lo, hi)
  PARALLEL_FOR_DTYPE(dt, blocks, count, CALL)
#undef CALL
}
