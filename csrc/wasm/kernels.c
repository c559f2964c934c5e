// WebAssembly entry points of the portable kernels (csrc/kernels). The host copies each
// call's arrays into the module's memory, so arguments are addresses in that memory and
// 32-bit counts (wasm32 addresses 4 GiB; counts are unsigned so that 2^31..2^32 survive
// the trip through JavaScript numbers). Array lengths are the wrappers' to get right
// (src/backend/c-kernels, tested against the reference kernels); a wrong one can only
// read or write this module's own scratch memory, never the caller's arrays. What only
// the data can tell (targets, geometry) is checked here.
//
// These builds have no OpenMP: each kernel runs on the calling thread.
#include <stdint.h>

#include "../kernels/attention.h"
#include "../kernels/kernels.h"

// gemm.c's single-threaded float32 product, for attention.
void wasm_sgemm(void* ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
                const float* b, float beta, float* c);
size_t peft_gemm_workspace(void);

#define EXPORT(name) __attribute__((export_name(name)))
#define MAX_DIMS 16

typedef uint32_t count_t;

// Broadcast geometry as the TypeScript wrappers build it: float64 [ndim, shape...,
// aStrides..., bStrides...]. Returns 0, or -1 when it is malformed.
EXPORT("peft_binary")
int peft_binary(int op, int dt, const double* g, const void* a, const void* b, void* out) {
  int ndim = (int)g[0];
  if (op < BIN_ADD || op > BIN_DIV || ndim < 0 || ndim > MAX_DIMS) return -1;
  int64_t shape[MAX_DIMS], as[MAX_DIMS], bs[MAX_DIMS], size = 1;
  for (int d = 0; d < ndim; d++) {
    shape[d] = (int64_t)g[1 + d];
    as[d] = (int64_t)g[1 + ndim + d];
    bs[d] = (int64_t)g[1 + 2 * ndim + d];
    size *= shape[d];
  }
  if (size > 0) binary_strided((binary_op)op, (float_dtype)dt, ndim, shape, as, bs, a, b, out);
  return 0;
}

EXPORT("peft_cast") void peft_cast(int from, int to, const void* x, void* y, count_t n) {
  cast_floats((float_dtype)from, (float_dtype)to, x, y, n);
}

EXPORT("peft_silu") void peft_silu(int dt, const void* x, void* y, count_t n) {
  silu_forward((float_dtype)dt, x, y, n);
}

EXPORT("peft_silu_grad")
void peft_silu_grad(int dt, const void* x, const void* dy, void* dx, count_t n) {
  silu_backward((float_dtype)dt, x, dy, dx, n);
}

EXPORT("peft_silu_mul")
void peft_silu_mul(int dt, const void* gate, const void* up, void* y, count_t n) {
  silu_mul_forward((float_dtype)dt, gate, up, y, n);
}

EXPORT("peft_silu_mul_grad")
void peft_silu_mul_grad(int dt, const void* gate, const void* up, const void* dy, void* dgate,
                        void* dup, count_t n) {
  silu_mul_backward((float_dtype)dt, gate, up, dy, dgate, dup, n);
}

// Returns the first row whose target is neither ignored nor a class, or -1 when all are.
static int64_t bad_target(const int32_t* targets, count_t rows, count_t classes, int32_t ignore) {
  for (count_t r = 0; r < rows; r++) {
    const int32_t t = targets[r];
    if (t != ignore && (t < 0 || (count_t)t >= classes)) return r;
  }
  return -1;
}

EXPORT("peft_cross_entropy")
int peft_cross_entropy(int dt, const void* logits, const int32_t* targets, count_t rows,
                       count_t classes, int32_t ignore, float* loss, float* lse) {
  if (bad_target(targets, rows, classes, ignore) >= 0) return -1;
  cross_entropy_forward((float_dtype)dt, logits, targets, rows, classes, ignore, loss, lse);
  return 0;
}

EXPORT("peft_cross_entropy_grad")
int peft_cross_entropy_grad(int dt, const void* logits, const int32_t* targets, const float* lse,
                            const float* dloss, count_t rows, count_t classes, int32_t ignore,
                            void* dlogits) {
  if (bad_target(targets, rows, classes, ignore) >= 0) return -1;
  cross_entropy_backward((float_dtype)dt, logits, targets, lse, dloss, rows, classes, ignore,
                         dlogits);
  return 0;
}

// packed and absmax are windows of the layer's arrays that begin at byte start / 2 and at
// block start / blocksize: only the bytes and scales of [start, start + count) are copied
// in, and the kernel indexes from the layer's origin, so both bases move back by the window.
EXPORT("peft_dequantize_4bit")
void peft_dequantize_4bit(int dt, const uint8_t* packed, const float* code, const float* absmax,
                          count_t blocksize, count_t start, count_t count, void* out) {
  const uint8_t* packed_origin = (const uint8_t*)((uintptr_t)packed - start / 2);
  const float* absmax_origin =
      (const float*)((uintptr_t)absmax - (uintptr_t)(start / blocksize) * sizeof(float));
  dequantize_4bit((float_dtype)dt, packed_origin, code, absmax_origin, blocksize, start, count,
                  out);
}

EXPORT("peft_norm")
void peft_norm(int rms, int dt, const void* x, const void* w, const void* b, count_t rows,
               count_t n, double eps, void* y, float* mean, float* rstd) {
  norm_forward((float_dtype)dt, rms, x, w, b, rows, n, eps, y, mean, rstd);
}

// Bytes of workspace peft_norm_grad needs.
EXPORT("peft_norm_grad_workspace") uint32_t peft_norm_grad_workspace(count_t rows, count_t n) {
  return (uint32_t)(norm_backward_workspace(rows, n) * (int64_t)sizeof(double));
}

EXPORT("peft_norm_grad")
void peft_norm_grad(int rms, int dt, const void* x, const void* w, const float* mean,
                    const float* rstd, const void* dy, count_t rows, count_t n, void* dx,
                    double* dw, double* db, double* workspace) {
  norm_backward((float_dtype)dt, rms, x, w, mean, rstd, dy, rows, n, dx, dw, db, workspace);
}

EXPORT("peft_rope")
void peft_rope(int dt, const void* x, const void* cos, const void* sin, count_t batch,
               count_t heads, count_t seq, count_t dim, count_t cos_batch, int inverse, void* y) {
  rope_apply((float_dtype)dt, x, cos, sin, batch, heads, seq, dim, cos_batch, inverse, y);
}

// Geometry: float64 [elementBytes, ndim, offset, shape..., strides...]. Returns 0, or -1
// when it is malformed.
EXPORT("peft_strided_copy") int peft_strided_copy(const double* g, const void* x, void* y) {
  const int elem = (int)g[0], ndim = (int)g[1];
  const int64_t offset = (int64_t)g[2];
  if ((elem != 1 && elem != 2 && elem != 4 && elem != 8) || ndim < 0 || ndim > MAX_DIMS ||
      offset < 0)
    return -1;
  int64_t shape[MAX_DIMS], strides[MAX_DIMS], size = 1;
  for (int d = 0; d < ndim; d++) {
    shape[d] = (int64_t)g[3 + d];
    strides[d] = (int64_t)g[3 + ndim + d];
    if (shape[d] < 0 || strides[d] < 0) return -1;
    size *= shape[d];
  }
  if (size > 0) strided_copy(elem, ndim, shape, strides, offset, x, y);
  return 0;
}

// Attention geometry as the TypeScript wrapper builds it: float64 [B, Hq, Hkv, T, S, D,
// scale, causal, maskKind, maskStrides x4]. Returns 0, or -1 when it is malformed.
static int attention_from(int dt, const double* g, const void* q, const void* k, const void* v,
                          const void* mask, attention_args* t) {
  *t = (attention_args){0};
  t->dtype = (float_dtype)dt;
  t->q = q, t->k = k, t->v = v, t->mask = mask;
  t->batch = (int64_t)g[0], t->heads_q = (int64_t)g[1], t->heads_kv = (int64_t)g[2];
  t->seq_q = (int64_t)g[3], t->seq_k = (int64_t)g[4], t->head_dim = (int64_t)g[5];
  t->scale = (float)g[6], t->causal = g[7] != 0, t->mask_kind = (mask_kind)(int)g[8];
  for (int d = 0; d < 4; d++) t->mask_strides[d] = (int64_t)g[9 + d];
  t->sgemm = wasm_sgemm;
  if (t->batch < 0 || t->heads_kv <= 0 || t->heads_q % t->heads_kv != 0 || t->seq_q < 0 ||
      t->seq_k < 0 || t->head_dim < 0 || t->mask_kind < MASK_NONE || t->mask_kind > MASK_FLOAT)
    return -1;
  return 0;
}

// Floats of the kernel's workspace, rounded up to whole 16-byte vectors: the product's
// workspace follows it in the same block.
static int64_t kernel_floats(int64_t seq_q, int64_t seq_k, int64_t head_dim, int backward) {
  attention_args t = {0};
  t.seq_q = seq_q, t.seq_k = seq_k, t.head_dim = head_dim;
  return (attention_workspace(&t, backward) + 3) / 4 * 4;
}

// Bytes of workspace peft_attention (backward 0) or peft_attention_grad (1) needs.
EXPORT("peft_attention_workspace")
uint32_t peft_attention_workspace(count_t seq_q, count_t seq_k, count_t head_dim, int backward) {
  return (uint32_t)(kernel_floats(seq_q, seq_k, head_dim, backward) * (int64_t)sizeof(float) +
                    (int64_t)peft_gemm_workspace());
}

static float* gemm_work(const attention_args* t, float* workspace, int backward) {
  return workspace + kernel_floats(t->seq_q, t->seq_k, t->head_dim, backward);
}

EXPORT("peft_attention")
int peft_attention(int dt, const void* q, const void* k, const void* v, const double* g,
                   const void* mask, void* out, float* lse, float* workspace) {
  attention_args t;
  if (attention_from(dt, g, q, k, v, mask, &t) != 0) return -1;
  t.sgemm_ctx = gemm_work(&t, workspace, 0);
  attention_forward(&t, out, lse, workspace);
  return 0;
}

EXPORT("peft_attention_grad")
int peft_attention_grad(int dt, const void* q, const void* k, const void* v, const double* g,
                        const void* mask, const void* out, const void* dout, void* dq, void* dk,
                        void* dv, float* workspace) {
  attention_args t;
  if (attention_from(dt, g, q, k, v, mask, &t) != 0) return -1;
  t.sgemm_ctx = gemm_work(&t, workspace, 1);
  attention_backward(&t, out, dout, dq, dk, dv, workspace);
  return 0;
}
