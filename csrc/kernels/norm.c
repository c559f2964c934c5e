// LayerNorm and RMSNorm over the last axis, forward and backward, with the reference
// backend's arithmetic: statistics and the normalisation in float64 (sums in lanes, so
// in another order), outputs rounded once; RMSNorm rounds the normalised value to the
// dtype before the weight multiplies it, as Hugging Face's LlamaRMSNorm does. Rows split
// across threads.
#include "dispatch.h"
#include "kernels.h"
#include "reduce.h"

KERNEL void norm_fwd_rows(float_dtype dt, int rms, const void* x, const void* w, const void* b,
                          int64_t n, double eps, void* y, float* mean, float* rstd, int64_t lo,
                          int64_t hi) {
  for (int64_t r = lo; r < hi; r++) {
    const int64_t at = r * n;
    const double mu = rms ? 0.0 : lanes_sum_f64(dt, x, at, n, 0.0, 0) / (double)n;
    const double v = lanes_sum_f64(dt, x, at, n, mu, 1);
    const double inv = 1.0 / __builtin_sqrt(v / (double)n + eps);
    if (mean != NULL) mean[r] = (float)mu;
    rstd[r] = (float)inv;
    for (int64_t j = 0; j < n; j++) {
      float xhat = (float)((load_f(x, dt, at + j) - mu) * inv);
      if (rms && (w != NULL || b != NULL)) xhat = round_to(dt, xhat);
      double out = w != NULL ? (double)xhat * load_f(w, dt, j) : xhat;
      if (b != NULL) out += load_f(b, dt, j);
      store_f(y, dt, at + j, (float)out);
    }
  }
}

void norm_forward(float_dtype dt, int rms, const void* x, const void* w, const void* b, int64_t rows,
                  int64_t n, double eps, void* y, float* mean, float* rstd) {
#define CALL(D, lo, hi) norm_fwd_rows(D, rms, x, w, b, n, eps, y, mean, rstd, lo, hi)
  PARALLEL_FOR_DTYPE(dt, rows, rows * n, CALL)
#undef CALL
}

// Rows [lo, hi): dx, and this thread's sums of the weight and bias gradients into
// part[0, n) and part[n, 2n) (when part is not NULL). scratch holds 2n doubles.
KERNEL void norm_bwd_rows(float_dtype dt, int rms, const void* x, const void* w, const float* mean,
                          const float* rstd, const void* dy, int64_t n, void* dx, double* part,
                          double* scratch, int64_t lo, int64_t hi) {
  double *xhat = scratch, *gh = scratch + n;
  for (int64_t r = lo; r < hi; r++) {
    const int64_t at = r * n;
    const double mu = rms ? 0.0 : mean[r], inv = rstd[r];
    for (int64_t j = 0; j < n; j++) {
      const double g = load_f(dy, dt, at + j);
      xhat[j] = (load_f(x, dt, at + j) - mu) * inv;
      gh[j] = g * (w != NULL ? load_f(w, dt, j) : 1.0f);
      if (part != NULL) {
        part[j] += g * xhat[j];
        part[n + j] += g;
      }
    }
    // The sums apart from the loop above, so that both vectorize.
    const double sum_gx = lanes_dot_f64(gh, xhat, n);
    const double mean_g = rms ? 0.0 : lanes_dot_f64(gh, NULL, n) / (double)n;
    for (int64_t j = 0; j < n; j++)
      store_f(dx, dt, at + j, (float)(inv * (gh[j] - mean_g - xhat[j] * sum_gx / (double)n)));
  }
}

// Threads the backward runs on for this size (its workspace holds 4n doubles for each).
static int norm_threads(int64_t rows, int64_t n) {
#ifdef _OPENMP
  return rows * n >= PARALLEL_MIN ? omp_get_max_threads() : 1;
#else
  (void)rows;
  (void)n;
  return 1;
#endif
}

int64_t norm_backward_workspace(int64_t rows, int64_t n) { return norm_threads(rows, n) * 4 * n; }

void norm_backward(float_dtype dt, int rms, const void* x, const void* w, const float* mean,
                   const float* rstd, const void* dy, int64_t rows, int64_t n, void* dx, double* dw,
                   double* db, double* workspace) {
  const int sums = dw != NULL || db != NULL;
  const int threads = norm_threads(rows, n);
  // Per thread: 2n doubles of scratch, then 2n of partial sums (zeroed here).
  for (int64_t i = 0; i < threads * 4 * n; i++) workspace[i] = 0;
#define CALL(D, lo, hi)                                                                     \
  norm_bwd_rows(D, rms, x, w, mean, rstd, dy, n, dx, sums ? mine + 2 * n : NULL, mine, lo, \
                hi)
#define BODY(D)                                                           \
  _Pragma("omp parallel num_threads(threads)") {                         \
    int64_t lo_, hi_;                                                     \
    thread_range(rows, &lo_, &hi_);                                       \
    double* mine = workspace + (int64_t)thread_index() * 4 * n;           \
    CALL(D, lo_, hi_);                                                    \
  }
  switch (dt) {
    case DT_BF16: BODY(DT_BF16) break;
    case DT_F16: BODY(DT_F16) break;
    default: BODY(DT_F32)
  }
#undef BODY
#undef CALL
  for (int t = 0; t < threads && sums; t++) {
    const double* part = workspace + (int64_t)t * 4 * n + 2 * n;
    for (int64_t j = 0; j < n; j++) {
      if (dw != NULL) dw[j] += part[j];
      if (db != NULL) db[j] += part[n + j];
    }
  }
}
