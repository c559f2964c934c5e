// Scaled dot-product attention (see attention.c).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "half.h"

typedef enum { MASK_NONE = 0, MASK_BOOL = 1, MASK_FLOAT = 2 } mask_kind;

// C[m, n] = op(A) op(B) + beta C, float32, row-major (op transposes when the flag is set),
// beta 0 or 1. Each build brings its own: oneDNN's sgemm natively, a SIMD128 kernel in wasm.
typedef void (*attention_sgemm)(void* ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                const float* a, const float* b, float beta, float* c);

typedef struct {
  float_dtype dtype;
  // q [B, Hq, T, D]; k and v [B, Hkv, S, D], Hq a multiple of Hkv.
  const void *q, *k, *v;
  int64_t batch, heads_q, heads_kv, seq_q, seq_k, head_dim;
  float scale;
  // Query i may see key j only if j <= i + (S - T).
  bool causal;
  // A bool (uint8, 0 hides) or float32 (added) mask read with strides over [B, Hq, T, S].
  mask_kind mask_kind;
  const void* mask;
  int64_t mask_strides[4];
  attention_sgemm sgemm;
  void* sgemm_ctx;
} attention_args;

// Floats of workspace the forward (backward 0) or backward (1) pass needs.
int64_t attention_workspace(const attention_args* a, int backward);
// out [B, Hq, T, D] in the dtype; lse [B, Hq, T] float32.
void attention_forward(const attention_args* a, void* out, float* lse, float* workspace);
// dq like q; dk and dv like k and v.
void attention_backward(const attention_args* a, const void* out, const void* dout, void* dq,
                        void* dk, void* dv, float* workspace);
