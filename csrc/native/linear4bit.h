// A product with a 4-bit weight for a few rows (decoding), without dequantising the
// weight into memory first.
#pragma once
#include <stdint.h>

#include "../kernels/half.h"

// y [m, n] = x [m, k] · Wᵀ for W [n, k] in bitsandbytes' 4-bit layout (two codes per
// byte, the even-indexed element in the high nibble, one absmax per `blocksize` elements
// of the flat weight). Each weight is code · absmax rounded to dt, as the dequantising
// path stores it; the sums run in float32 and are rounded once to dt. Returns 0, or -1
// when the scratch memory cannot be allocated.
int linear_4bit_rows(float_dtype dt, const void* x, int64_t m, int64_t k, const uint8_t* packed,
                     const float* code, const float* absmax, int64_t blocksize, int64_t n,
                     void* y);
