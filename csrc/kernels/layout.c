// Strided copies into a contiguous output: permutes and slices of any dtype, moved as
// elements of 1, 2, 4 or 8 bytes. Rows of the innermost axis split across threads.
#include "dispatch.h"
#include "kernels.h"

#define COPY_BODY(T)                                                                   \
  do {                                                                                 \
    const T* src = (const T*)x;                                                        \
    T* dst = (T*)y;                                                                    \
    _Pragma("omp parallel for schedule(static) if (rows * inner >= PARALLEL_MIN)")     \
    for (int64_t r = 0; r < rows; r++) {                                               \
      int64_t at = offset, rest = r;                                                   \
      for (int d = ndim - 2; d >= 0; d--) {                                            \
        at += (rest % shape[d]) * strides[d];                                          \
        rest /= shape[d];                                                              \
      }                                                                                \
      T* out = dst + r * inner;                                                        \
      if (step == 1) {                                                                 \
        __builtin_memcpy(out, src + at, (size_t)inner * sizeof(T));                              \
      } else {                                                                         \
        for (int64_t j = 0; j < inner; j++) out[j] = src[at + j * step];               \
      }                                                                                \
    }                                                                                  \
  } while (0)

void strided_copy(int elem, int ndim, const int64_t* shape, const int64_t* strides, int64_t offset,
                  const void* x, void* y) {
  const int64_t inner = ndim > 0 ? shape[ndim - 1] : 1, step = ndim > 0 ? strides[ndim - 1] : 1;
  int64_t rows = 1;
  for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
  switch (elem) {
    case 1: COPY_BODY(uint8_t); break;
    case 2: COPY_BODY(uint16_t); break;
    case 4: COPY_BODY(uint32_t); break;
    default: COPY_BODY(uint64_t);
  }
}
