// Node-API addon: the GEMM of the native backend, on oneDNN's row-major sgemm.
// bfloat16 operands are widened to float32 here (exact), so the product accumulates in
// float32 as PyTorch's CPU kernels do; the caller rounds the result to its dtype.
#include <node_api.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "E_BACKEND", "peft native: bad argument"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

// Reads a Float32Array or a Uint16Array of bfloat16 bits as float32; *owned is set when
// the returned buffer was allocated here and must be freed.
static const float* read_floats(napi_env env, napi_value v, size_t expect, int* owned) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  *owned = 0;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok) return NULL;
  if (length < expect) return NULL;
  if (type == napi_float32_array) return (const float*)data;
  if (type != napi_uint16_array) return NULL;
  float* out = (float*)malloc(expect * sizeof(float));
  if (out == NULL) return NULL;
  const uint16_t* src = (const uint16_t*)data;
  for (size_t i = 0; i < expect; i++) {
    uint32_t bits = (uint32_t)src[i] << 16;
    memcpy(&out[i], &bits, sizeof(float));
  }
  *owned = 1;
  return out;
}

// gemm(transA, transB, M, N, K, A, B, C): C[M, N] = op(A) op(B), row-major.
static napi_value gemm(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 8) {
    napi_throw_error(env, "E_BACKEND", "peft native: gemm expects 8 arguments");
    return NULL;
  }
  bool ta, tb;
  int64_t m, n, k;
  CHECK(napi_get_value_bool(env, argv[0], &ta));
  CHECK(napi_get_value_bool(env, argv[1], &tb));
  CHECK(napi_get_value_int64(env, argv[2], &m));
  CHECK(napi_get_value_int64(env, argv[3], &n));
  CHECK(napi_get_value_int64(env, argv[4], &k));
  int own_a, own_b;
  const float* a = read_floats(env, argv[5], (size_t)(m * k), &own_a);
  const float* b = read_floats(env, argv[6], (size_t)(k * n), &own_b);
  napi_typedarray_type ct;
  size_t clen;
  void* c;
  int ok_c = napi_get_typedarray_info(env, argv[7], &ct, &clen, &c, NULL, NULL) == napi_ok &&
             ct == napi_float32_array && clen >= (size_t)(m * n);
  dnnl_status_t status = dnnl_invalid_arguments;
  if (a != NULL && b != NULL && ok_c) {
    status = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n,
                        0.0f, (float*)c, n);
  }
  if (own_a) free((void*)a);
  if (own_b) free((void*)b);
  if (status != dnnl_success) {
    napi_throw_error(env, "E_BACKEND", "peft native: dnnl_sgemm failed (bad operands or sizes)");
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "gemm", NAPI_AUTO_LENGTH, gemm, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "gemm", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
