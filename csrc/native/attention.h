// Attention kernels of the native backend (see attention.c).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "../kernels/half.h"

typedef enum { MASK_NONE = 0, MASK_BOOL = 1, MASK_FLOAT = 2 } mask_kind;

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
} attention_args;

// out [B, Hq, T, D] in the dtype; lse [B, Hq, T] float32. Returns 0, or -1 out of memory.
int attention_forward(const attention_args* a, void* out, float* lse);
// dq like q; dk and dv like k and v. Returns 0, or -1 out of memory.
int attention_backward(const attention_args* a, const void* out, const void* dout, void* dq,
                       void* dk, void* dv);
