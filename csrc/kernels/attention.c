// Scaled dot-product attention, forward and backward, on the build's sgemm: per head the
// scores Q·Kᵀ, a masked softmax and P·V; the backward recomputes P from Q and K instead
// of keeping it. Work splits across threads by key/value head, so the heads of a
// grouped-query group, which add into the same dK and dV, stay on one thread, each
// thread in its own part of the caller's workspace.
#include "attention.h"

#include "dispatch.h"
#include "math.h"

static void widen_rows(float_dtype dt, const void* src, int64_t at, int64_t n, float* dst) {
  if (dt == DT_F32) {
    __builtin_memcpy(dst, (const float*)src + at, (size_t)n * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < n; i++) dst[i] = load_f(src, dt, at + i);
}

static void sgemm(const attention_args* a, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                  const float* x, const float* y, float beta, float* c) {
  a->sgemm(a->sgemm_ctx, ta, tb, m, n, k, x, y, beta, c);
}

static int attention_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Floats one thread needs for one key/value head.
static int64_t unit_floats(const attention_args* a, int backward) {
  const int64_t T = a->seq_q, S = a->seq_k, D = a->head_dim;
  return backward ? 4 * S * D + 4 * T * D + 2 * T * S + T : 2 * S * D + 2 * T * D + T * S;
}

int64_t attention_workspace(const attention_args* a, int backward) {
  return attention_threads() * unit_floats(a, backward);
}

// P [T, S] of head (b, h) from its scores: scale, causal limit, mask, softmax; lse per row.
static void probabilities(const attention_args* a, int64_t b, int64_t h, float* p, float* lse) {
  const int64_t T = a->seq_q, S = a->seq_k;
  const float neg_inf = -__builtin_inff();
  for (int64_t i = 0; i < T; i++) {
    float* row = p + i * S;
    int64_t limit = a->causal ? i + S - T : S - 1;
    float max = neg_inf;
    for (int64_t j = 0; j < S; j++) {
      float s = j > limit ? neg_inf : row[j] * a->scale;
      if (a->mask_kind != MASK_NONE && s != neg_inf) {
        int64_t at = b * a->mask_strides[0] + h * a->mask_strides[1] + i * a->mask_strides[2] +
                     j * a->mask_strides[3];
        if (a->mask_kind == MASK_BOOL) {
          if (((const uint8_t*)a->mask)[at] == 0) s = neg_inf;
        } else {
          s += ((const float*)a->mask)[at];
        }
      }
      row[j] = s;
      max = s > max ? s : max;
    }
    if (max == neg_inf) {
      for (int64_t j = 0; j < S; j++) row[j] = 0;
      lse[i] = neg_inf;
      continue;
    }
    float sum = 0;
    for (int64_t j = 0; j < S; j++) sum += exp_f32(row[j] - max);
    float l = max + (float)log_f64(sum);
    lse[i] = l;
    for (int64_t j = 0; j < S; j++) row[j] = exp_f32(row[j] - l);
  }
}

void attention_forward(const attention_args* a, void* out, float* lse, float* workspace) {
  const int64_t T = a->seq_q, S = a->seq_k, D = a->head_dim, H = a->heads_q, G = H / a->heads_kv;
  const int64_t units = a->batch * a->heads_kv, per_thread = unit_floats(a, 0);
#pragma omp parallel for schedule(dynamic) num_threads(attention_threads())
  for (int64_t u = 0; u < units; u++) {
    const int64_t b = u / a->heads_kv, kvh = u % a->heads_kv;
    float* k = workspace + thread_index() * per_thread;
    float *v = k + S * D, *q = v + S * D, *o = q + T * D, *p = o + T * D;
    widen_rows(a->dtype, a->k, u * S * D, S * D, k);
    widen_rows(a->dtype, a->v, u * S * D, S * D, v);
    for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
      const int64_t head = (b * H + h) * T;
      widen_rows(a->dtype, a->q, head * D, T * D, q);
      sgemm(a, false, true, T, S, D, q, k, 0.0f, p);
      probabilities(a, b, h, p, lse + head);
      sgemm(a, false, false, T, D, S, p, v, 0.0f, o);
      for (int64_t i = 0; i < T * D; i++) store_f(out, a->dtype, head * D + i, o[i]);
    }
  }
}

void attention_backward(const attention_args* a, const void* out, const void* dout, void* dq,
                        void* dk, void* dv, float* workspace) {
  const int64_t T = a->seq_q, S = a->seq_k, D = a->head_dim, H = a->heads_q, G = H / a->heads_kv;
  const int64_t units = a->batch * a->heads_kv, per_thread = unit_floats(a, 1);
#pragma omp parallel for schedule(dynamic) num_threads(attention_threads())
  for (int64_t u = 0; u < units; u++) {
    const int64_t b = u / a->heads_kv, kvh = u % a->heads_kv;
    float* k = workspace + thread_index() * per_thread;
    float *v = k + S * D, *gk = v + S * D, *gv = gk + S * D, *q = gv + S * D, *o = q + T * D;
    float *g = o + T * D, *gq = g + T * D, *p = gq + T * D, *dp = p + T * S, *lse = dp + T * S;
    widen_rows(a->dtype, a->k, u * S * D, S * D, k);
    widen_rows(a->dtype, a->v, u * S * D, S * D, v);
    for (int64_t i = 0; i < 2 * S * D; i++) gk[i] = 0;
    for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
      const int64_t head = (b * H + h) * T;
      widen_rows(a->dtype, a->q, head * D, T * D, q);
      widen_rows(a->dtype, out, head * D, T * D, o);
      widen_rows(a->dtype, dout, head * D, T * D, g);
      sgemm(a, false, true, T, S, D, q, k, 0.0f, p);
      probabilities(a, b, h, p, lse);
      // dV += Pᵀ·dO; dP = dO·Vᵀ; dS = P ∘ (dP - rowsum(dO ∘ O)) · scale; dQ = dS·K; dK += dSᵀ·Q.
      sgemm(a, true, false, S, D, T, p, g, 1.0f, gv);
      sgemm(a, false, true, T, S, D, g, v, 0.0f, dp);
      for (int64_t i = 0; i < T; i++) {
        float di = 0;
        for (int64_t d = 0; d < D; d++) di += g[i * D + d] * o[i * D + d];
        for (int64_t j = 0; j < S; j++)
          dp[i * S + j] = p[i * S + j] * (dp[i * S + j] - di) * a->scale;
      }
      sgemm(a, false, false, T, D, S, dp, k, 0.0f, gq);
      sgemm(a, true, false, S, D, T, dp, q, 1.0f, gk);
      for (int64_t i = 0; i < T * D; i++) store_f(dq, a->dtype, head * D + i, gq[i]);
    }
    for (int64_t i = 0; i < S * D; i++) {
      store_f(dk, a->dtype, u * S * D + i, gk[i]);
      store_f(dv, a->dtype, u * S * D + i, gv[i]);
    }
  }
}
