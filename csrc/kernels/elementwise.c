// Elementwise kernels. Each loop is written once as an inline body and instantiated per
// dtype (the dtype is a compile-time constant after inlining), so loads and stores
// vectorize; large loops split across threads.
#include "kernels.h"
#include "dispatch.h"
#include "math.h"

static inline float apply(binary_op op, float x, float y) {
  switch (op) {
    case BIN_ADD: return x + y;
    case BIN_SUB: return x - y;
    case BIN_MUL: return x * y;
    default: return x / y;
  }
}

// One innermost row of `n` outputs; the common stride pairs get their own loops.
KERNEL void binary_row(binary_op op, float_dtype dt,
                                                             const void* a, int64_t ia, int64_t sa,
                                                             const void* b, int64_t ib, int64_t sb,
                                                             void* out, int64_t io, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t j = 0; j < n; j++)
      store_f(out, dt, io + j, apply(op, load_f(a, dt, ia + j), load_f(b, dt, ib + j)));
  } else if (sa == 1 && sb == 0) {
    float y = load_f(b, dt, ib);
    for (int64_t j = 0; j < n; j++) store_f(out, dt, io + j, apply(op, load_f(a, dt, ia + j), y));
  } else if (sa == 0 && sb == 1) {
    float x = load_f(a, dt, ia);
    for (int64_t j = 0; j < n; j++) store_f(out, dt, io + j, apply(op, x, load_f(b, dt, ib + j)));
  } else {
    for (int64_t j = 0; j < n; j++)
      store_f(out, dt, io + j, apply(op, load_f(a, dt, ia + j * sa), load_f(b, dt, ib + j * sb)));
  }
}

KERNEL void binary_body(
    binary_op op, float_dtype dt, int ndim, const int64_t* shape, const int64_t* as,
    const int64_t* bs, const void* a, const void* b, void* out) {
  int64_t inner = ndim > 0 ? shape[ndim - 1] : 1;
  int64_t sa = ndim > 0 ? as[ndim - 1] : 0, sb = ndim > 0 ? bs[ndim - 1] : 0;
  int64_t rows = 1;
  for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
#pragma omp parallel for schedule(static) if (rows * inner >= PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    // The row's offsets into a and b from its multi-index over the outer dims.
    int64_t ia = 0, ib = 0, rest = r;
    for (int d = ndim - 2; d >= 0; d--) {
      int64_t i = rest % shape[d];
      rest /= shape[d];
      ia += i * as[d];
      ib += i * bs[d];
    }
    binary_row(op, dt, a, ia, sa, b, ib, sb, out, r * inner, inner);
  }
}

void binary_strided(binary_op op, float_dtype dt, int ndim, const int64_t* shape,
                    const int64_t* a_strides, const int64_t* b_strides, const void* a, const void* b,
                    void* out) {
#define CALL(D) binary_body(op, D, ndim, shape, a_strides, b_strides, a, b, out)
  FOR_DTYPE(dt, CALL)
#undef CALL
}

KERNEL void silu_fwd_body(float_dtype dt, const void* x,
                                                                void* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) {
    float v = load_f(x, dt, i);
    store_f(y, dt, i, v * sigmoid_f32(v));
  }
}

void silu_forward(float_dtype dt, const void* x, void* y, int64_t n) {
#define CALL(D) silu_fwd_body(D, x, y, n)
  FOR_DTYPE(dt, CALL)
#undef CALL
}

KERNEL void silu_bwd_body(float_dtype dt, const void* x,
                                                                const void* dy, void* dx,
                                                                int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) {
    float v = load_f(x, dt, i);
    float s = sigmoid_f32(v);
    store_f(dx, dt, i, load_f(dy, dt, i) * s * (1.0f + v * (1.0f - s)));
  }
}

void silu_backward(float_dtype dt, const void* x, const void* dy, void* dx, int64_t n) {
#define CALL(D) silu_bwd_body(D, x, dy, dx, n)
  FOR_DTYPE(dt, CALL)
#undef CALL
}

KERNEL void cast_body(float_dtype from, float_dtype to, const void* x, void* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) store_f(y, to, i, load_f(x, from, i));
}

KERNEL void cast_to(float_dtype from, float_dtype to, const void* x, void* y, int64_t n) {
#define CALL(T) cast_body(from, T, x, y, n)
  FOR_DTYPE(to, CALL)
#undef CALL
}

void cast_floats(float_dtype from, float_dtype to, const void* x, void* y, int64_t n) {
#define CALL(F) cast_to(F, to, x, y, n)
  FOR_DTYPE(from, CALL)
#undef CALL
}
