// 4-bit blockwise dequantisation (bitsandbytes' layout), a block of rows at a time into
// the GEMM: each value is code[nibble] · absmax[block] in float32, rounded to the
// output dtype. Blocks split across threads.
#include "dispatch.h"
#include "kernels.h"

KERNEL void dequant_blocks(float_dtype dt, const uint8_t* packed, const float* code,
                           const float* absmax, int64_t blocksize, int64_t start, int64_t count,
                           void* out, int64_t first, int64_t lo, int64_t hi) {
  for (int64_t b = first + lo; b < first + hi; b++) {
    const int64_t j0 = b * blocksize > start ? b * blocksize : start;
    const int64_t j1 = (b + 1) * blocksize < start + count ? (b + 1) * blocksize : start + count;
    const float scale = absmax[b];
    for (int64_t j = j0; j < j1; j++) {
      const uint8_t byte = packed[j >> 1];
      store_f(out, dt, j - start, code[(j & 1) ? byte & 15 : byte >> 4] * scale);
    }
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
