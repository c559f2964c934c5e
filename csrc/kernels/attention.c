// Scaled dot-product attention, forward and backward, on the build's sgemm: per head the
// scores Q·Kᵀ, a masked softmax and P·V; the backward recomputes P from Q and K instead
// of keeping it. Work splits across threads by key/value head, so the heads of a
// grouped-query group, which add into the same dK and dV, stay on one thread, each
// thread in its own part of the caller's workspace. Causal attention runs in blocks of
// query rows, each block only against the keys its last row may see, which skips
// close to half of the products and of the softmax.
#include "attention.h"

#include "dispatch.h"
#include "math.h"
#include "reduce.h"

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

// Query rows per block under a causal limit. Smaller blocks skip more keys but make
// smaller products; 32 measured best for 256-token sequences (64 and 128 within 10%).
#define ROW_BLOCK 32

static int64_t row_block(const attention_args* a) {
  return a->causal && a->seq_q > ROW_BLOCK ? ROW_BLOCK : a->seq_q;
}

// How many keys (from the first) any of the query rows before `end` may see.
static int64_t visible_keys(const attention_args* a, int64_t end) {
  if (!a->causal) return a->seq_k;
  const int64_t n = end + a->seq_k - a->seq_q;
  return n < 0 ? 0 : n > a->seq_k ? a->seq_k : n;
}

// P [rows, n] of query rows i0.. of head (b, h) from their scores against the first n
// keys: scale, causal limit, mask, softmax; lse per row.
static void probabilities(const attention_args* a, int64_t b, int64_t h, int64_t i0, int64_t rows,
                          int64_t n, float* p, float* lse) {
  const int64_t T = a->seq_q, S = a->seq_k;
  const float neg_inf = -__builtin_inff();
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i = i0 + r;
    float* row = p + r * n;
    const int64_t limit = a->causal ? i + S - T : S - 1;
    for (int64_t j = 0; j < n; j++) row[j] = j > limit ? neg_inf : row[j] * a->scale;
    for (int64_t j = 0; a->mask_kind != MASK_NONE && j < n && j <= limit; j++) {
      const int64_t at = b * a->mask_strides[0] + h * a->mask_strides[1] +
                         i * a->mask_strides[2] + j * a->mask_strides[3];
      if (a->mask_kind == MASK_BOOL) {
        if (((const uint8_t*)a->mask)[at] == 0) row[j] = neg_inf;
      } else {
        row[j] += ((const float*)a->mask)[at];
      }
    }
    const float max = lanes_max(DT_F32, row, 0, n);
    // The max skips NaN, so a row of NaN and -inf (a NaN query) would pass for one that
    // sees no key; with a NaN the reference's max is NaN and so is everything below.
    bool nan_in_row = false;
    for (int64_t j = 0; max == neg_inf && j < n; j++) nan_in_row |= row[j] != row[j];
    if (max == neg_inf && !nan_in_row) {
      for (int64_t j = 0; j < n; j++) row[j] = 0;
      lse[r] = neg_inf;
      continue;
    }
    const float l = max + (float)log_f64(lanes_sum_exp(DT_F32, row, 0, n, max));
    lse[r] = l;
    for (int64_t j = 0; j < n; j++) row[j] = exp_f32(row[j] - l);
  }
}

// Whether any of x[0 .. n) is NaN or infinite (all exponent bits set); an integer or
// over the bits, so it vectorizes.
static bool any_non_finite(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; i++) bad |= (f32_to_bits(x[i]) & 0x7f800000u) == 0x7f800000u;
  return bad != 0;
}

// The reference kernel skips every key a row gives probability 0 (hidden, or e^-inf), so
// an infinite or NaN value, gradient or input there reaches nothing, where in a product
// 0 * inf would make NaN of every row in the block. Heads holding a non-finite value run
// their products on these instead, which add only the terms whose p is nonzero:
//   c [rows, D] = x [rows, n] · y [n, D]  (beta 0)
static void product_where(const float* p, int64_t rows, int64_t n, int64_t D, const float* x,
                          const float* y, float* c) {
  for (int64_t r = 0; r < rows; r++) {
    float* cr = c + r * D;
    for (int64_t d = 0; d < D; d++) cr[d] = 0;
    for (int64_t j = 0; j < n; j++) {
      if (p[r * n + j] == 0) continue;
      const float w = x[r * n + j];
      for (int64_t d = 0; d < D; d++) cr[d] += w * y[j * D + d];
    }
  }
}

//   c [n, D] += xᵀ · y for x [rows, n] and y [rows, D]
static void product_t_where(const float* p, int64_t rows, int64_t n, int64_t D, const float* x,
                            const float* y, float* c) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < n; j++) {
      if (p[r * n + j] == 0) continue;
      const float w = x[r * n + j];
      for (int64_t d = 0; d < D; d++) c[j * D + d] += w * y[r * D + d];
    }
}

// Rows that see no key at all: zero output rows and lse -inf (the reference's convention).
static void no_keys(float* out, float* lse, int64_t rows, int64_t D) {
  for (int64_t i = 0; i < rows * D; i++) out[i] = 0;
  for (int64_t r = 0; lse != NULL && r < rows; r++) lse[r] = -__builtin_inff();
}

void attention_forward(const attention_args* a, void* out, float* lse, float* workspace) {
  const int64_t T = a->seq_q, S = a->seq_k, D = a->head_dim, H = a->heads_q, G = H / a->heads_kv;
  const int64_t units = a->batch * a->heads_kv, per_thread = unit_floats(a, 0), block = row_block(a);
#pragma omp parallel for schedule(dynamic) num_threads(attention_threads())
  for (int64_t u = 0; u < units; u++) {
    const int64_t b = u / a->heads_kv, kvh = u % a->heads_kv;
    float* k = workspace + thread_index() * per_thread;
    float *v = k + S * D, *q = v + S * D, *o = q + T * D, *p = o + T * D;
    widen_rows(a->dtype, a->k, u * S * D, S * D, k);
    widen_rows(a->dtype, a->v, u * S * D, S * D, v);
    const bool v_bad = any_non_finite(v, S * D);
    for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
      const int64_t head = (b * H + h) * T;
      widen_rows(a->dtype, a->q, head * D, T * D, q);
      for (int64_t i0 = 0; i0 < T; i0 += block) {
        const int64_t rows = T - i0 < block ? T - i0 : block, n = visible_keys(a, i0 + rows);
        if (n == 0) {
          no_keys(o + i0 * D, lse + head + i0, rows, D);
          continue;
        }
        sgemm(a, false, true, rows, n, D, q + i0 * D, k, 0.0f, p);
        probabilities(a, b, h, i0, rows, n, p, lse + head + i0);
        if (v_bad)
          product_where(p, rows, n, D, p, v, o + i0 * D);
        else
          sgemm(a, false, false, rows, D, n, p, v, 0.0f, o + i0 * D);
      }
      for (int64_t i = 0; i < T * D; i++) store_f(out, a->dtype, head * D + i, o[i]);
    }
  }
}

void attention_backward(const attention_args* a, const void* out, const void* dout, void* dq,
                        void* dk, void* dv, float* workspace) {
  const int64_t T = a->seq_q, S = a->seq_k, D = a->head_dim, H = a->heads_q, G = H / a->heads_kv;
  const int64_t units = a->batch * a->heads_kv, per_thread = unit_floats(a, 1), block = row_block(a);
#pragma omp parallel for schedule(dynamic) num_threads(attention_threads())
  for (int64_t u = 0; u < units; u++) {
    const int64_t b = u / a->heads_kv, kvh = u % a->heads_kv;
    float* k = workspace + thread_index() * per_thread;
    float *v = k + S * D, *gk = v + S * D, *gv = gk + S * D, *q = gv + S * D, *o = q + T * D;
    float *g = o + T * D, *gq = g + T * D, *p = gq + T * D, *dp = p + T * S, *lse = dp + T * S;
    widen_rows(a->dtype, a->k, u * S * D, S * D, k);
    widen_rows(a->dtype, a->v, u * S * D, S * D, v);
    const bool kv_bad = any_non_finite(k, S * D) || any_non_finite(v, S * D);
    for (int64_t i = 0; i < 2 * S * D; i++) gk[i] = 0;
    for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
      const int64_t head = (b * H + h) * T;
      widen_rows(a->dtype, a->q, head * D, T * D, q);
      widen_rows(a->dtype, out, head * D, T * D, o);
      widen_rows(a->dtype, dout, head * D, T * D, g);
      const bool bad = kv_bad || any_non_finite(q, T * D) || any_non_finite(o, T * D) ||
                       any_non_finite(g, T * D);
      for (int64_t i0 = 0; i0 < T; i0 += block) {
        const int64_t rows = T - i0 < block ? T - i0 : block;
        int64_t n = visible_keys(a, i0 + rows);
        const float *qb = q + i0 * D, *ob = o + i0 * D, *gb = g + i0 * D;
        if (n == 0) {
          no_keys(gq + i0 * D, NULL, rows, D);
          continue;
        }
        sgemm(a, false, true, rows, n, D, qb, k, 0.0f, p);
        probabilities(a, b, h, i0, rows, n, p, lse);
        // A row whose lse is NaN has p NaN for every key, the ones the causal limit hides
        // included (e^(-inf - NaN)), so with the reference it makes NaN of all of dK and dV:
        // such a block runs against every key.
        bool nan_row = false;
        for (int64_t r = 0; r < rows; r++) nan_row |= lse[r] != lse[r];
        if (nan_row && n < S) {
          n = S;
          sgemm(a, false, true, rows, n, D, qb, k, 0.0f, p);
          probabilities(a, b, h, i0, rows, n, p, lse);
        }
        // dV += Pᵀ·dO; dP = dO·Vᵀ; dS = P ∘ (dP - rowsum(dO ∘ O)) · scale; dQ = dS·K;
        // dK += dSᵀ·Q; over the first n keys (the others get nothing from these rows).
        if (bad)
          product_t_where(p, rows, n, D, p, gb, gv);
        else
          sgemm(a, true, false, n, D, rows, p, gb, 1.0f, gv);
        sgemm(a, false, true, rows, n, D, gb, v, 0.0f, dp);
        for (int64_t r = 0; r < rows; r++) {
          const float di = lanes_dot(gb + r * D, ob + r * D, D);
          for (int64_t j = 0; j < n; j++)
            dp[r * n + j] = p[r * n + j] * (dp[r * n + j] - di) * a->scale;
        }
        if (bad) {
          product_where(p, rows, n, D, dp, k, gq + i0 * D);
          product_t_where(p, rows, n, D, dp, qb, gk);
        } else {
          sgemm(a, false, false, rows, D, n, dp, k, 0.0f, gq + i0 * D);
          sgemm(a, true, false, n, D, rows, dp, qb, 1.0f, gk);
        }
      }
      for (int64_t i = 0; i < T * D; i++) store_f(dq, a->dtype, head * D + i, gq[i]);
    }
    for (int64_t i = 0; i < S * D; i++) {
      store_f(dk, a->dtype, u * S * D + i, gk[i]);
      store_f(dv, a->dtype, u * S * D + i, gv[i]);
    }
  }
}
