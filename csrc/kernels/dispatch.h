// Instantiates a kernel body once per float dtype: CALL(D) is expanded with D a constant,
// so after inlining each copy loads and stores one dtype and its loops vectorize.
#pragma once
#include "half.h"

#define FOR_DTYPE(dt, CALL)             \
  switch (dt) {                         \
    case DT_BF16: CALL(DT_BF16); break; \
    case DT_F16: CALL(DT_F16); break;   \
    default: CALL(DT_F32);              \
  }

#define KERNEL static inline __attribute__((always_inline))

// Loops with at least this many elements split across threads.
#define PARALLEL_MIN 32768
