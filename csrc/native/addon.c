// Node-API addon of the native backend: argument checking and the entry points. The
// kernels work on the tensors' own buffers; nothing is copied in or out except where a
// dtype has to be widened (float16 GEMM operands, and bfloat16 ones on CPUs without
// AVX-512: gemm.c).
#define _GNU_SOURCE
#include <node_api.h>
#include <sys/mman.h>
#include <omp.h>
#include <stdlib.h>

#include "../kernels/half.h"
#include "../kernels/attention.h"
#include "../kernels/kernels.h"
#include "gemm.h"
#include "gemv.h"
#include "linear4bit.h"

static napi_value fail(napi_env env, const char* message) {
  napi_throw_error(env, "E_BACKEND", message);
  return NULL;
}

// The arguments of one call, read by position; any bad one clears `ok`, so an entry point
// reads them all and checks once.
typedef struct {
  napi_env env;
  napi_value argv[12];
  int ok;
} args;

static args read_args(napi_env env, napi_callback_info info, size_t want) {
  args a = {env, {0}, 1};
  size_t argc = 12;
  a.ok = napi_get_cb_info(env, info, &argc, a.argv, NULL, NULL) == napi_ok && argc == want;
  return a;
}

static int64_t arg_int(args* a, int i) {
  int64_t v = 0;
  if (a->ok && napi_get_value_int64(a->env, a->argv[i], &v) != napi_ok) a->ok = 0;
  return v;
}

static bool arg_bool(args* a, int i) {
  bool v = false;
  if (a->ok && napi_get_value_bool(a->env, a->argv[i], &v) != napi_ok) a->ok = 0;
  return v;
}

static float_dtype arg_dtype(args* a, int i) {
  int64_t v = arg_int(a, i);
  if (v < DT_F32 || v > DT_F16) a->ok = 0;
  return (float_dtype)v;
}

// A typed array of at least `count` elements of `elem` bytes each.
static void* arg_array(args* a, int i, int64_t count, size_t elem) {
  napi_typedarray_type type;
  size_t length;
  void* data = NULL;
  if (!a->ok || count < 0 ||
      napi_get_typedarray_info(a->env, a->argv[i], &type, &length, &data, NULL, NULL) != napi_ok) {
    a->ok = 0;
    return NULL;
  }
  size_t size = type == napi_float32_array || type == napi_int32_array ? 4
                : type == napi_uint16_array                            ? 2
                : type == napi_uint8_array                             ? 1
                : type == napi_float64_array || type == napi_bigint64_array ? 8
                                                                            : 0;
  if (size != elem || length < (size_t)count) a->ok = 0;
  return data;
}

// arg_array, or NULL when the argument is null.
static void* arg_optional(args* a, int i, int64_t count, size_t elem) {
  napi_valuetype type;
  if (a->ok && napi_typeof(a->env, a->argv[i], &type) == napi_ok && type == napi_null) return NULL;
  return arg_array(a, i, count, elem);
}

static size_t elem_size(float_dtype dt) { return dt == DT_F32 ? 4 : 2; }

#define BAD_ARGS(a, name) \
  if (!(a).ok) return fail(env, "peft native: " name " got arguments of the wrong type or size")

// matmul(dtype, transA, transB, M, N, K, A, B, C): C[M, N] = op(A) op(B), row-major. A, B
// and C have the dtype: 0 float32 (Float32Array), 1 bfloat16 or 2 float16 (Uint16Array).
static napi_value matmul(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 9);
  float_dtype dt = arg_dtype(&a, 0);
  bool ta = arg_bool(&a, 1), tb = arg_bool(&a, 2);
  int64_t m = arg_int(&a, 3), n = arg_int(&a, 4), k = arg_int(&a, 5);
  void* x = arg_array(&a, 6, m * k, elem_size(dt));
  void* y = arg_array(&a, 7, k * n, elem_size(dt));
  void* z = arg_array(&a, 8, m * n, elem_size(dt));
  BAD_ARGS(a, "matmul");
  if (m == 0 || n == 0) return NULL;
  // An empty sum: oneDNN's sgemm refuses k = 0, and the output may hold anything.
  if (k == 0) {
    __builtin_memset(z, 0, (size_t)(m * n) * elem_size(dt));
    return NULL;
  }
  _Static_assert((int)DT_BF16 == (int)GEMM_BF16 && (int)DT_F16 == (int)GEMM_F16,
                 "float_dtype and gemm_dtype number the dtypes alike");
  int status = gemm_run((gemm_dtype)dt, ta, tb, m, n, k, x, y, z);
  if (status != 0) return fail(env, "peft native: the oneDNN matmul failed");
  return NULL;
}

// Frees a packed weight when its JavaScript handle is collected, and tells the engine the
// memory is gone (it counted it, so that large packed weights prompt a collection).
static void free_packed(napi_env env, void* data, void* hint) {
  (void)hint;
  int64_t change;
  napi_adjust_external_memory(env, -(int64_t)gemm_pack_bytes(data), &change);
  gemm_pack_free(data);
}

// packWeight(dtype, n, k, w): a handle to W [n, k] (float32 or bfloat16) packed for
// matmulPacked; W itself is not kept.
static napi_value pack_weight(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 4);
  float_dtype dt = arg_dtype(&a, 0);
  int64_t n = arg_int(&a, 1), k = arg_int(&a, 2);
  if (dt == DT_F16 || n <= 0 || k <= 0) a.ok = 0;
  const void* w = arg_array(&a, 3, n * k, elem_size(dt));
  BAD_ARGS(a, "packWeight");
  packed_weight* p;
  if (gemm_pack(dt == DT_BF16 ? GEMM_BF16 : GEMM_F32, n, k, w, &p) != 0)
    return fail(env, "peft native: packing a weight failed");
  napi_value handle;
  int64_t change;
  if (napi_create_external(env, p, free_packed, NULL, &handle) != napi_ok) {
    gemm_pack_free(p);
    return fail(env, "peft native: packWeight could not create its handle");
  }
  napi_adjust_external_memory(env, (int64_t)gemm_pack_bytes(p), &change);
  return handle;
}

// matmulPacked(dtype, m, n, k, x, packed, y): y [m, n] = x [m, k] · Wᵀ for a packed W.
static napi_value matmul_packed(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 7);
  float_dtype dt = arg_dtype(&a, 0);
  int64_t m = arg_int(&a, 1), n = arg_int(&a, 2), k = arg_int(&a, 3);
  packed_weight* p = NULL;
  napi_valuetype type;
  if (a.ok && (napi_typeof(env, a.argv[5], &type) != napi_ok || type != napi_external ||
               napi_get_value_external(env, a.argv[5], (void**)&p) != napi_ok))
    a.ok = 0;
  if (p != NULL && (p->n != n || p->k != k || p->dt != (dt == DT_BF16 ? GEMM_BF16 : GEMM_F32) ||
                    dt == DT_F16))
    a.ok = 0;
  const void* x = arg_array(&a, 4, m * k, elem_size(dt));
  void* y = arg_array(&a, 6, m * n, elem_size(dt));
  BAD_ARGS(a, "matmulPacked");
  if (m == 0) return NULL;
  if (gemm_run_packed(p, m, x, y) != 0) return fail(env, "peft native: the oneDNN matmul failed");
  return NULL;
}

// binary(op, dtype, geometry, a, b, out): geometry is a Float64Array [ndim, shape...,
// aStrides..., bStrides...] (broadcast strides, 0 on broadcast axes).
static napi_value binary(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 6);
  int64_t op = arg_int(&a, 0);
  float_dtype dt = arg_dtype(&a, 1);
  const double* g = arg_array(&a, 2, 1, 8);
  int ndim = g != NULL && a.ok ? (int)g[0] : -1;
  if (op < BIN_ADD || op > BIN_DIV || ndim < 0 || ndim > 16) a.ok = 0;
  int64_t shape[16], as[16], bs[16], size = 1, a_len = 1, b_len = 1;
  if (a.ok && arg_array(&a, 2, 1 + 3 * ndim, 8) != NULL && a.ok) {
    for (int d = 0; d < ndim; d++) {
      shape[d] = (int64_t)g[1 + d];
      as[d] = (int64_t)g[1 + ndim + d];
      bs[d] = (int64_t)g[1 + 2 * ndim + d];
      size *= shape[d];
      a_len += (shape[d] - 1) * as[d];
      b_len += (shape[d] - 1) * bs[d];
    }
  }
  void* x = arg_array(&a, 3, size == 0 ? 0 : a_len, elem_size(dt));
  void* y = arg_array(&a, 4, size == 0 ? 0 : b_len, elem_size(dt));
  void* z = arg_array(&a, 5, size, elem_size(dt));
  BAD_ARGS(a, "binary");
  if (size > 0) binary_strided((binary_op)op, dt, ndim, shape, as, bs, x, y, z);
  return NULL;
}

// Elementwise kernels over whole arrays of equal length, all in one dtype: `inputs`
// arrays, then `outputs` arrays, after the dtype argument.
static bool elementwise(napi_env env, napi_callback_info info, int inputs, int outputs,
                        const char* name, void** arrays, float_dtype* dt, int64_t* n) {
  args a = read_args(env, info, (size_t)(1 + inputs + outputs));
  *dt = arg_dtype(&a, 0);
  size_t length = 0;
  if (a.ok && napi_get_typedarray_info(env, a.argv[1], NULL, &length, NULL, NULL, NULL) != napi_ok)
    a.ok = 0;
  for (int i = 0; i < inputs + outputs; i++) arrays[i] = arg_array(&a, 1 + i, (int64_t)length, elem_size(*dt));
  *n = (int64_t)length;
  if (!a.ok) napi_throw_error(env, "E_BACKEND", name);
  return a.ok;
}

#define ELEMENTWISE(inputs, outputs, name)                                                      \
  void* p[(inputs) + (outputs)];                                                                \
  float_dtype dt;                                                                               \
  int64_t n;                                                                                    \
  if (!elementwise(env, info, inputs, outputs,                                                   \
                  "peft native: " name " got arguments of the wrong type or size", p, &dt, \
                  &n))                                                                          \
    return NULL;

// silu(dtype, x, y)
static napi_value silu(napi_env env, napi_callback_info info) {
  ELEMENTWISE(1, 1, "silu")
  silu_forward(dt, p[0], p[1], n);
  return NULL;
}

// siluGrad(dtype, x, dy, dx)
static napi_value silu_grad(napi_env env, napi_callback_info info) {
  ELEMENTWISE(2, 1, "siluGrad")
  silu_backward(dt, p[0], p[1], p[2], n);
  return NULL;
}

// siluMul(dtype, gate, up, y)
static napi_value silu_mul(napi_env env, napi_callback_info info) {
  ELEMENTWISE(2, 1, "siluMul")
  silu_mul_forward(dt, p[0], p[1], p[2], n);
  return NULL;
}

// siluMulGrad(dtype, gate, up, dy, dgate, dup)
static napi_value silu_mul_grad(napi_env env, napi_callback_info info) {
  ELEMENTWISE(3, 2, "siluMulGrad")
  silu_mul_backward(dt, p[0], p[1], p[2], p[3], p[4], n);
  return NULL;
}

// cast(from, to, x, y): float dtype conversion of a whole array.
static napi_value cast(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 4);
  float_dtype from = arg_dtype(&a, 0), to = arg_dtype(&a, 1);
  size_t length = 0;
  if (a.ok) napi_get_typedarray_info(env, a.argv[2], NULL, &length, NULL, NULL, NULL);
  void* x = arg_array(&a, 2, (int64_t)length, elem_size(from));
  void* y = arg_array(&a, 3, (int64_t)length, elem_size(to));
  BAD_ARGS(a, "cast");
  cast_floats(from, to, x, y, (int64_t)length);
  return NULL;
}

// crossEntropy(dtype, logits, targets, rows, classes, ignoreIndex, loss, lse)
static napi_value cross_entropy(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 8);
  float_dtype dt = arg_dtype(&a, 0);
  int64_t rows = arg_int(&a, 3), classes = arg_int(&a, 4), ignore = arg_int(&a, 5);
  void* x = arg_array(&a, 1, rows * classes, elem_size(dt));
  int32_t* t = arg_array(&a, 2, rows, 4);
  float* loss = arg_array(&a, 6, rows, 4);
  float* lse = arg_array(&a, 7, rows, 4);
  BAD_ARGS(a, "crossEntropy");
  for (int64_t r = 0; r < rows; r++)
    if (t[r] != ignore && (t[r] < 0 || t[r] >= classes))
      return fail(env, "peft native: crossEntropy target out of range");
  cross_entropy_forward(dt, x, t, rows, classes, (int32_t)ignore, loss, lse);
  return NULL;
}

// crossEntropyGrad(dtype, logits, targets, lse, dloss, rows, classes, ignoreIndex, dlogits)
static napi_value cross_entropy_grad(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 9);
  float_dtype dt = arg_dtype(&a, 0);
  int64_t rows = arg_int(&a, 5), classes = arg_int(&a, 6), ignore = arg_int(&a, 7);
  void* x = arg_array(&a, 1, rows * classes, elem_size(dt));
  int32_t* t = arg_array(&a, 2, rows, 4);
  float* lse = arg_array(&a, 3, rows, 4);
  float* dloss = arg_array(&a, 4, rows, 4);
  void* dx = arg_array(&a, 8, rows * classes, elem_size(dt));
  BAD_ARGS(a, "crossEntropyGrad");
  for (int64_t r = 0; r < rows; r++)
    if (t[r] != ignore && (t[r] < 0 || t[r] >= classes))
      return fail(env, "peft native: crossEntropyGrad target out of range");
  cross_entropy_backward(dt, x, t, lse, dloss, rows, classes, (int32_t)ignore, dx);
  return NULL;
}

// dequantize4bit(dtype, packed, code, absmax, blocksize, start, count, out)
static napi_value dequantize4bit(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 8);
  float_dtype dt = arg_dtype(&a, 0);
  int64_t blocksize = arg_int(&a, 4), start = arg_int(&a, 5), count = arg_int(&a, 6);
  if (blocksize <= 0 || start < 0 || count < 0) a.ok = 0;
  int64_t end = a.ok ? start + count : 0;
  const uint8_t* packed = arg_array(&a, 1, (end + 1) / 2, 1);
  const float* code = arg_array(&a, 2, 16, 4);
  const float* absmax = arg_array(&a, 3, a.ok && end > 0 ? (end - 1) / blocksize + 1 : 0, 4);
  void* out = arg_array(&a, 7, count, elem_size(dt));
  BAD_ARGS(a, "dequantize4bit");
  dequantize_4bit(dt, packed, code, absmax, blocksize, start, count, out);
  return NULL;
}

// gemvRows(x, m, k, w, n, y): y [m, n] = x [m, k] · Wᵀ for W [n, k], all bfloat16, m at
// most 8.
static napi_value gemv_rows_entry(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 6);
  int64_t m = arg_int(&a, 1), k = arg_int(&a, 2), n = arg_int(&a, 4);
  if (m < 1 || m > 8 || k < 0 || n < 0) a.ok = 0;
  const uint16_t* x = arg_array(&a, 0, m * k, 2);
  const uint16_t* w = arg_array(&a, 3, n * k, 2);
  uint16_t* y = arg_array(&a, 5, m * n, 2);
  BAD_ARGS(a, "gemvRows");
  gemv_rows_bf16(x, m, k, w, n, y);
  return NULL;
}

// linear4bitRows(dtype, x, m, k, packed, code, absmax, blocksize, n, y): y [m, n] = x [m, k]
// · Wᵀ for a 4-bit W [n, k]; m at most 8, k and blocksize multiples of 32.
static napi_value linear4bit_rows(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 10);
  float_dtype dt = arg_dtype(&a, 0);
  int64_t m = arg_int(&a, 2), k = arg_int(&a, 3), blocksize = arg_int(&a, 7), n = arg_int(&a, 8);
  if (m < 1 || m > 8 || k <= 0 || k % 32 != 0 || blocksize <= 0 || blocksize % 32 != 0 || n <= 0)
    a.ok = 0;
  const void* x = arg_array(&a, 1, m * k, elem_size(dt));
  const uint8_t* packed = arg_array(&a, 4, n * k / 2, 1);
  const float* code = arg_array(&a, 5, 16, 4);
  const float* absmax = arg_array(&a, 6, a.ok ? (n * k - 1) / blocksize + 1 : 0, 4);
  void* y = arg_array(&a, 9, m * n, elem_size(dt));
  BAD_ARGS(a, "linear4bitRows");
  if (linear_4bit_rows(dt, x, m, k, packed, code, absmax, blocksize, n, y) != 0)
    return fail(env, "peft native: linear4bitRows could not allocate its scratch memory");
  return NULL;
}

// The shared arguments of attention and attentionGrad: dtype, q, k, v, geometry (a
// Float64Array [B, Hq, Hkv, T, S, D, scale, causal, maskKind, maskStrides x4]) and mask
// (a Uint8Array for bool masks, a Float32Array for additive ones, or null).
static attention_args attention_args_from(args* a) {
  attention_args t = {0};
  t.dtype = arg_dtype(a, 0);
  const double* g = arg_array(a, 4, 13, 8);
  if (!a->ok) return t;
  t.batch = (int64_t)g[0], t.heads_q = (int64_t)g[1], t.heads_kv = (int64_t)g[2];
  t.seq_q = (int64_t)g[3], t.seq_k = (int64_t)g[4], t.head_dim = (int64_t)g[5];
  t.scale = (float)g[6], t.causal = g[7] != 0, t.mask_kind = (mask_kind)(int)g[8];
  t.sgemm = gemm_sgemm;
  if (t.batch < 0 || t.heads_kv <= 0 || t.heads_q % t.heads_kv != 0 || t.seq_q < 0 ||
      t.seq_k < 0 || t.head_dim < 0 || t.mask_kind < MASK_NONE || t.mask_kind > MASK_FLOAT) {
    a->ok = 0;
    return t;
  }
  size_t e = elem_size(t.dtype);
  t.q = arg_array(a, 1, t.batch * t.heads_q * t.seq_q * t.head_dim, e);
  t.k = arg_array(a, 2, t.batch * t.heads_kv * t.seq_k * t.head_dim, e);
  t.v = arg_array(a, 3, t.batch * t.heads_kv * t.seq_k * t.head_dim, e);
  if (t.mask_kind != MASK_NONE) {
    const int64_t dims[4] = {t.batch, t.heads_q, t.seq_q, t.seq_k};
    int64_t span = 1;
    for (int d = 0; d < 4; d++) {
      t.mask_strides[d] = (int64_t)g[9 + d];
      if (t.mask_strides[d] < 0) a->ok = 0;
      if (dims[d] > 0) span += (dims[d] - 1) * t.mask_strides[d];
    }
    t.mask = arg_array(a, 5, span, t.mask_kind == MASK_BOOL ? 1 : 4);
  }
  return t;
}

// attention(dtype, q, k, v, geometry, mask, out, lse)
static napi_value attention(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 8);
  attention_args t = attention_args_from(&a);
  void* out = arg_array(&a, 6, t.batch * t.heads_q * t.seq_q * t.head_dim, elem_size(t.dtype));
  float* lse = arg_array(&a, 7, t.batch * t.heads_q * t.seq_q, 4);
  BAD_ARGS(a, "attention");
  float* workspace = malloc((size_t)attention_workspace(&t, 0) * sizeof(float));
  if (workspace == NULL) return fail(env, "peft native: attention ran out of memory");
  attention_forward(&t, out, lse, workspace);
  free(workspace);
  return NULL;
}

// attentionGrad(dtype, q, k, v, geometry, mask, out, dout, dq, dk, dv)
static napi_value attention_grad(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 11);
  attention_args t = attention_args_from(&a);
  size_t e = elem_size(t.dtype);
  int64_t nq = t.batch * t.heads_q * t.seq_q * t.head_dim;
  int64_t nk = t.batch * t.heads_kv * t.seq_k * t.head_dim;
  void* out = arg_array(&a, 6, nq, e);
  void* dout = arg_array(&a, 7, nq, e);
  void* dq = arg_array(&a, 8, nq, e);
  void* dk = arg_array(&a, 9, nk, e);
  void* dv = arg_array(&a, 10, nk, e);
  BAD_ARGS(a, "attentionGrad");
  float* workspace = malloc((size_t)attention_workspace(&t, 1) * sizeof(float));
  if (workspace == NULL) return fail(env, "peft native: attentionGrad ran out of memory");
  attention_backward(&t, out, dout, dq, dk, dv, workspace);
  free(workspace);
  return NULL;
}

// norm(rms, dtype, x, w, b, rows, n, eps, y, mean, rstd); w, b and mean may be null.
static napi_value norm(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 11);
  bool rms = arg_bool(&a, 0);
  float_dtype dt = arg_dtype(&a, 1);
  int64_t rows = arg_int(&a, 5), n = arg_int(&a, 6);
  double eps = 0;
  if (a.ok && napi_get_value_double(env, a.argv[7], &eps) != napi_ok) a.ok = 0;
  size_t e = elem_size(dt);
  const void* x = arg_array(&a, 2, rows * n, e);
  const void* w = arg_optional(&a, 3, n, e);
  const void* b = arg_optional(&a, 4, n, e);
  void* y = arg_array(&a, 8, rows * n, e);
  float* mean = arg_optional(&a, 9, rows, 4);
  float* rstd = arg_array(&a, 10, rows, 4);
  if (!rms && mean == NULL) a.ok = 0;
  BAD_ARGS(a, "norm");
  norm_forward(dt, rms, x, w, b, rows, n, eps, y, rms ? NULL : mean, rstd);
  return NULL;
}

// normGrad(rms, dtype, x, w, mean, rstd, dy, rows, n, dx, dw, db); w, mean, dw, db may be null.
static napi_value norm_grad(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 12);
  bool rms = arg_bool(&a, 0);
  float_dtype dt = arg_dtype(&a, 1);
  int64_t rows = arg_int(&a, 7), n = arg_int(&a, 8);
  size_t e = elem_size(dt);
  const void* x = arg_array(&a, 2, rows * n, e);
  const void* w = arg_optional(&a, 3, n, e);
  const float* mean = arg_optional(&a, 4, rows, 4);
  const float* rstd = arg_array(&a, 5, rows, 4);
  const void* dy = arg_array(&a, 6, rows * n, e);
  void* dx = arg_array(&a, 9, rows * n, e);
  double* dw = arg_optional(&a, 10, n, 8);
  double* db = arg_optional(&a, 11, n, 8);
  if (!rms && mean == NULL) a.ok = 0;
  BAD_ARGS(a, "normGrad");
  double* workspace = malloc((size_t)norm_backward_workspace(rows, n) * sizeof(double));
  if (workspace == NULL) return fail(env, "peft native: normGrad ran out of memory");
  norm_backward(dt, rms, x, w, mean, rstd, dy, rows, n, dx, dw, db, workspace);
  free(workspace);
  return NULL;
}

// rope(dtype, x, cos, sin, batch, heads, seq, dim, cosBatch, inverse, y)
static napi_value rope(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 11);
  float_dtype dt = arg_dtype(&a, 0);
  int64_t batch = arg_int(&a, 4), heads = arg_int(&a, 5), seq = arg_int(&a, 6), dim = arg_int(&a, 7);
  int64_t cos_batch = arg_int(&a, 8);
  bool inverse = arg_bool(&a, 9);
  if (dim % 2 != 0 || (cos_batch != 1 && cos_batch != batch)) a.ok = 0;
  size_t e = elem_size(dt);
  const void* x = arg_array(&a, 1, batch * heads * seq * dim, e);
  const void* c = arg_array(&a, 2, cos_batch * seq * dim, e);
  const void* s = arg_array(&a, 3, cos_batch * seq * dim, e);
  void* y = arg_array(&a, 10, batch * heads * seq * dim, e);
  BAD_ARGS(a, "rope");
  rope_apply(dt, x, c, s, batch, heads, seq, dim, cos_batch, inverse, y);
  return NULL;
}

// stridedCopy(geometry, x, y): geometry is a Float64Array [elementBytes, ndim, offset,
// shape..., strides...]; x and y are typed arrays of that element size.
static napi_value strided_copy_entry(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 3);
  const double* g = arg_array(&a, 0, 3, 8);
  int elem = a.ok ? (int)g[0] : 0, ndim = a.ok ? (int)g[1] : -1;
  int64_t offset = a.ok ? (int64_t)g[2] : -1;
  if ((elem != 1 && elem != 2 && elem != 4 && elem != 8) || ndim < 0 || ndim > 16 || offset < 0)
    a.ok = 0;
  int64_t shape[16], strides[16], size = 1, span = offset + 1;
  if (arg_array(&a, 0, 3 + 2 * ndim, 8) != NULL && a.ok) {
    for (int d = 0; d < ndim; d++) {
      shape[d] = (int64_t)g[3 + d];
      strides[d] = (int64_t)g[3 + ndim + d];
      if (shape[d] < 0 || strides[d] < 0) a.ok = 0;
      size *= shape[d];
      if (shape[d] > 0) span += (shape[d] - 1) * strides[d];
    }
  }
  const void* x = arg_array(&a, 1, size == 0 ? 0 : span, (size_t)elem);
  void* y = arg_array(&a, 2, size, (size_t)elem);
  BAD_ARGS(a, "stridedCopy");
  if (size > 0) strided_copy(elem, ndim, shape, strides, offset, x, y);
  return NULL;
}

// prefault(array): maps the pages of a freshly allocated typed array in one call
// (MADV_POPULATE_WRITE), instead of one page fault per 4 KiB page as a kernel first
// writes it; page faults dominate filling large new buffers on virtual machines.
static napi_value prefault(napi_env env, napi_callback_info info) {
  args a = read_args(env, info, 1);
  void* data = NULL;
  size_t length = 0;
  napi_typedarray_type type;
  if (!a.ok || napi_get_typedarray_info(env, a.argv[0], &type, &length, &data, NULL, NULL) != napi_ok)
    return fail(env, "peft native: prefault expects a typed array");
#ifdef MADV_POPULATE_WRITE
  size_t bytes = length * (type == napi_float64_array || type == napi_bigint64_array ? 8
                           : type == napi_float32_array || type == napi_int32_array ? 4
                           : type == napi_uint16_array                            ? 2
                                                                                  : 1);
  uintptr_t page = 4096, start = ((uintptr_t)data + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)data + bytes) & ~(page - 1);
#ifdef MADV_HUGEPAGE
  // 2 MiB pages for the aligned interior, where the system leaves huge pages to madvise:
  // on some virtual machines filling 4 KiB pages costs ~2.5 s per GB, 2 MiB ones ~0.1 s.
  // Only from 32 MiB, which glibc always maps on its own: advising part of the heap would
  // split its mapping in two at every call.
  uintptr_t huge = (uintptr_t)2 << 20, hstart = (start + huge - 1) & ~(huge - 1),
            hend = end & ~(huge - 1);
  if (bytes >= ((size_t)32 << 20) && hend > hstart)
    madvise((void*)hstart, hend - hstart, MADV_HUGEPAGE);
#endif
  // Best effort: on kernels without it the pages fault in as usual.
  if (end > start) madvise((void*)start, end - start, MADV_POPULATE_WRITE);
#endif
  return NULL;
}

// info(): { isa, threads, bf16Matmul } — the instruction set oneDNN runs on, the threads
// kernels use, and whether oneDNN multiplies bfloat16 itself (else it is widened).
static napi_value info(napi_env env, napi_callback_info cb) {
  (void)cb;
  napi_value out, isa, threads, bf16;
  if (napi_create_object(env, &out) != napi_ok ||
      napi_create_string_utf8(env, gemm_isa_name(), NAPI_AUTO_LENGTH, &isa) != napi_ok ||
      napi_set_named_property(env, out, "isa", isa) != napi_ok ||
      napi_create_int32(env, omp_get_max_threads(), &threads) != napi_ok ||
      napi_set_named_property(env, out, "threads", threads) != napi_ok ||
      napi_get_boolean(env, gemm_bf16_native(), &bf16) != napi_ok ||
      napi_set_named_property(env, out, "bf16Matmul", bf16) != napi_ok)
    return fail(env, "peft native: info failed");
  return out;
}

static int export_fn(napi_env env, napi_value exports, const char* name, napi_callback cb) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) != napi_ok) return 0;
  return napi_set_named_property(env, exports, name, fn) == napi_ok;
}

static void release_thread(void* arg) {
  (void)arg;
  gemm_release_thread();
}

static napi_value init(napi_env env, napi_value exports) {
  // Each environment (the main thread, each worker) runs on its own thread.
  if (napi_add_env_cleanup_hook(env, release_thread, NULL) != napi_ok) return NULL;
  if (!export_fn(env, exports, "matmul", matmul) || !export_fn(env, exports, "binary", binary) ||
      !export_fn(env, exports, "silu", silu) || !export_fn(env, exports, "siluMul", silu_mul) ||
      !export_fn(env, exports, "siluMulGrad", silu_mul_grad) || !export_fn(env, exports, "cast", cast) || !export_fn(env, exports, "siluGrad", silu_grad) ||
      !export_fn(env, exports, "crossEntropy", cross_entropy) ||
      !export_fn(env, exports, "crossEntropyGrad", cross_entropy_grad) ||
      !export_fn(env, exports, "dequantize4bit", dequantize4bit) ||
      !export_fn(env, exports, "linear4bitRows", linear4bit_rows) ||
      !export_fn(env, exports, "gemvRows", gemv_rows_entry) ||
      !export_fn(env, exports, "attention", attention) ||
      !export_fn(env, exports, "attentionGrad", attention_grad) ||
      !export_fn(env, exports, "norm", norm) ||
      !export_fn(env, exports, "normGrad", norm_grad) || !export_fn(env, exports, "rope", rope) ||
      !export_fn(env, exports, "stridedCopy", strided_copy_entry) ||
      !export_fn(env, exports, "prefault", prefault) ||
      !export_fn(env, exports, "packWeight", pack_weight) ||
      !export_fn(env, exports, "matmulPacked", matmul_packed) ||
      !export_fn(env, exports, "info", info))
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
