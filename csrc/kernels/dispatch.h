// Runs a kernel's range function once per float dtype and per thread. The dtype reaches
// the range function as a literal constant *inside* the parallel region, so after
// inlining each copy loads and stores one dtype and its loops vectorize (a dtype passed
// into the region as a variable would leave a switch in the loop).
#pragma once
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "half.h"

#define KERNEL static inline __attribute__((always_inline))

// Work (elements touched) below which a kernel stays on one thread.
#define PARALLEL_MIN 32768

static inline int thread_index(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// This thread's share [lo, hi) of [0, n), in equal contiguous parts.
static inline void thread_range(int64_t n, int64_t* lo, int64_t* hi) {
#ifdef _OPENMP
  int64_t t = omp_get_thread_num(), count = omp_get_num_threads();
#else
  int64_t t = 0, count = 1;
#endif
  int64_t chunk = (n + count - 1) / count;
  *lo = t * chunk < n ? t * chunk : n;
  *hi = *lo + chunk < n ? *lo + chunk : n;
}

// STMT runs on every thread with lo_ and hi_ set to its share of [0, n).
#define PARALLEL_RANGE(n, work, STMT)                 \
  do {                                                \
    const int parallel_ = (work) >= PARALLEL_MIN;     \
    (void)parallel_;                                  \
    _Pragma("omp parallel if (parallel_)") {          \
      int64_t lo_, hi_;                               \
      thread_range((n), &lo_, &hi_);                  \
      STMT;                                           \
    }                                                 \
  } while (0)

// CALL(D, lo, hi) over [0, n) split across threads, with D the dtype as a constant.
#define PARALLEL_FOR_DTYPE(dt, n, work, CALL)                         \
  switch (dt) {                                                       \
    case DT_BF16: PARALLEL_RANGE(n, work, CALL(DT_BF16, lo_, hi_)); break; \
    case DT_F16: PARALLEL_RANGE(n, work, CALL(DT_F16, lo_, hi_)); break;   \
    default: PARALLEL_RANGE(n, work, CALL(DT_F32, lo_, hi_));              \
  }
