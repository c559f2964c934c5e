// Elementwise kernels: range functions instantiated per dtype and per thread through
// PARALLEL_FOR_DTYPE (dispatch.h).
#include "dispatch.h"
#include "kernels.h"
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
KERNEL void binary_row(binary_op op, float_dtype dt, const void* a, int64_t ia, int64_t sa,
                       const void* b, int64_t ib, int64_t sb, void* out, int64_t io, int64_t n) {
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

// Rows [lo, hi) of the output viewed as [rows, inner]; each op gets its own loop copy.
KERNEL void binary_rows(binary_op op, float_dtype dt, int ndim, const int64_t* shape,
                        const int64_t* as, const int64_t* bs, const void* a, const void* b,
                        void* out, int64_t lo, int64_t hi) {
  const int64_t inner = ndim > 0 ? shape[ndim - 1] : 1;
  const int64_t sa = ndim > 0 ? as[ndim - 1] : 0, sb = ndim > 0 ? bs[ndim - 1] : 0;
  for (int64_t r = lo; r < hi; r++) {
    // The row's offsets into a and b from its multi-index over the outer dims.
    int64_t ia = 0, ib = 0, rest = r;
    for (int d = ndim - 2; d >= 0; d--) {
      int64_t i = rest % shape[d];
      rest /= shape[d];
      ia += i * as[d];
      ib += i * bs[d];
    }
    switch (op) {
      case BIN_ADD: binary_row(BIN_ADD, dt, a, ia, sa, b, ib, sb, out, r * inner, inner); break;
      case BIN_SUB: binary_row(BIN_SUB, dt, a, ia, sa, b, ib, sb, out, r * inner, inner); break;
      case BIN_MUL: binary_row(BIN_MUL, dt, a, ia, sa, b, ib, sb, out, r * inner, inner); break;
      default: binary_row(BIN_DIV, dt, a, ia, sa, b, ib, sb, out, r * inner, inner);
    }
  }
}

void binary_strided(binary_op op, float_dtype dt, int ndim, const int64_t* shape,
                    const int64_t* a_strides, const int64_t* b_strides, const void* a, const void* b,
                    void* out) {
  int64_t rows = 1;
  for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
  const int64_t size = rows * (ndim > 0 ? shape[ndim - 1] : 1);
#define CALL(D, lo, hi) binary_rows(op, D, ndim, shape, a_strides, b_strides, a, b, out, lo, hi)
  PARALLEL_FOR_DTYPE(dt, rows, size, CALL)
#undef CALL
}

KERNEL void cast_range(float_dtype from, float_dtype to, const void* x, void* y, int64_t lo,
                       int64_t hi) {
  for (int64_t i = lo; i < hi; i++) store_f(y, to, i, load_f(x, from, i));
}

KERNEL void cast_to(float_dtype from, float_dtype to, const void* x, void* y, int64_t lo,
                    int64_t hi) {
  switch (to) {
    case DT_BF16: cast_range(from, DT_BF16, x, y, lo, hi); break;
    case DT_F16: cast_range(from, DT_F16, x, y, lo, hi); break;
    default: cast_range(from, DT_F32, x, y, lo, hi);
  }
}

void cast_floats(float_dtype from, float_dtype to, const void* x, void* y, int64_t n) {
#define CALL(F, lo, hi) cast_to(F, to, x, y, lo, hi)
  PARALLEL_FOR_DTYPE(from, n, n, CALL)
#undef CALL
}

KERNEL void silu_fwd_range(float_dtype dt, const void* x, void* y, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float v = load_f(x, dt, i);
    store_f(y, dt, i, v * sigmoid_f32(v));
  }
}

void silu_forward(float_dtype dt, const void* x, void* y, int64_t n) {
#define CALL(D, lo, hi) silu_fwd_range(D, x, y, lo, hi)
  PARALLEL_FOR_DTYPE(dt, n, n, CALL)
#undef CALL
}

KERNEL void silu_bwd_range(float_dtype dt, const void* x, const void* dy, void* dx, int64_t lo,
                           int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float v = load_f(x, dt, i);
    float s = sigmoid_f32(v);
    store_f(dx, dt, i, load_f(dy, dt, i) * s * (1.0f + v * (1.0f - s)));
  }
}

void silu_backward(float_dtype dt, const void* x, const void* dy, void* dx, int64_t n) {
#define CALL(D, lo, hi) silu_bwd_range(D, x, dy, dx, lo, hi)
  PARALLEL_FOR_DTYPE(dt, n, n, CALL)
#undef CALL
}

// silu(gate) * up with silu's output rounded to the dtype first, as two separate ops would.
KERNEL void silu_mul_fwd_range(float_dtype dt, const void* g, const void* u, void* y, int64_t lo,
                               int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float v = load_f(g, dt, i);
    store_f(y, dt, i, round_to(dt, v * sigmoid_f32(v)) * load_f(u, dt, i));
  }
}

void silu_mul_forward(float_dtype dt, const void* gate, const void* up, void* y, int64_t n) {
#define CALL(D, lo, hi) silu_mul_fwd_range(D, gate, up, y, lo, hi)
  PARALLEL_FOR_DTYPE(dt, n, n, CALL)
#undef CALL
}

// dup = dy * silu(gate); dgate = silu'(gate) * (dy * up), each intermediate rounded as the
// separate ops' backward rounds it.
KERNEL void silu_mul_bwd_range(float_dtype dt, const void* g, const void* u, const void* dy,
                               void* dg, void* du, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float v = load_f(g, dt, i), s = sigmoid_f32(v), d = load_f(dy, dt, i);
    store_f(du, dt, i, d * round_to(dt, v * s));
    store_f(dg, dt, i, round_to(dt, d * load_f(u, dt, i)) * s * (1.0f + v * (1.0f - s)));
  }
}

void silu_mul_backward(float_dtype dt, const void* gate, const void* up, const void* dy,
                       void* dgate, void* dup, int64_t n) {
#define CALL(D, lo, hi) silu_mul_bwd_range(D, gate, up, dy, dgate, dup, lo, hi)
  PARALLEL_FOR_DTYPE(dt, n, n, CALL)
#undef CALL
}
