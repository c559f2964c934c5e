// y = x · Wᵀ in bfloat16 for the few rows of a decoding step, straight from a linear
// layer's weight.
#pragma once
#include <stdint.h>

// y [m, n] = x [m, k] · Wᵀ for W [n, k] row-major, all bfloat16, m at most 8; sums in
// float32, rounded once to bfloat16.
void gemv_rows_bf16(const uint16_t* x, int64_t m, int64_t k, const uint16_t* w, int64_t n,
                    uint16_t* y);
