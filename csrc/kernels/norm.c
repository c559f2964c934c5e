// LayerNorm and RMSNorm over the last axis, forward and backward, with the reference
// backend's arithmetic: statistics and the normalisation in float64, outputs rounded
// once; RMSNorm rounds the normalised value to the dtype before the weight multiplies
// it, as Hugging Face's LlamaRMSNorm does. Rows split across threads.
#include <math.h>
#include <stdlib.h>

#include "dispatch.h"
#include "kernels.h"

KERNEL void norm_fwd_body(float_dtype dt, int rms, const void* x, const void* w, const void* b,
                          int64_t rows, int64_t n, double eps, void* y, float* mean, float* rstd) {
#pragma omp parallel for schedule(static) if (rows * n >= PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t at = r * n;
    double mu = 0, v = 0;
    if (!rms) {
      for (int64_t j = 0; j < n; j++) mu += load_f(x, dt, at + j);
      mu /= (double)n;
    }
    for (int64_t j = 0; j < n; j++) {
      double d = load_f(x, dt, at + j) - mu;
      v += d * d;
    }
    double inv = 1.0 / sqrt(v / (double)n + eps);
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
#define CALL(D) norm_fwd_body(D, rms, x, w, b, rows, n, eps, y, mean, rstd)
  FOR_DTYPE(dt, CALL)
#undef CALL
}

KERNEL int norm_bwd_body(float_dtype dt, int rms, const void* x, const void* w, const float* mean,
                         const float* rstd, const void* dy, int64_t rows, int64_t n, void* dx,
                         double* dw, double* db) {
  int failed = 0;
#pragma omp parallel reduction(| : failed) if (rows * n >= PARALLEL_MIN)
  {
    // Each thread sums its rows' weight and bias gradients, then adds them in.
    double* part = (dw != NULL || db != NULL) ? calloc((size_t)(2 * n), sizeof(double)) : NULL;
    double* xhat = malloc((size_t)(2 * n) * sizeof(double));
    if ((part == NULL && (dw != NULL || db != NULL)) || xhat == NULL) {
      failed = 1;
    } else {
      double* gh = xhat + n;
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; r++) {
        const int64_t at = r * n;
        const double mu = rms ? 0.0 : mean[r], inv = rstd[r];
        double sum_g = 0, sum_gx = 0;
        for (int64_t j = 0; j < n; j++) {
          double g = load_f(dy, dt, at + j);
          xhat[j] = (load_f(x, dt, at + j) - mu) * inv;
          gh[j] = g * (w != NULL ? load_f(w, dt, j) : 1.0f);
          sum_g += gh[j];
          sum_gx += gh[j] * xhat[j];
          if (part != NULL) {
            part[j] += g * xhat[j];
            part[n + j] += g;
          }
        }
        const double mean_g = rms ? 0.0 : sum_g / (double)n;
        for (int64_t j = 0; j < n; j++)
          store_f(dx, dt, at + j, (float)(inv * (gh[j] - mean_g - xhat[j] * sum_gx / (double)n)));
      }
      if (part != NULL) {
#pragma omp critical
        for (int64_t j = 0; j < n; j++) {
          if (dw != NULL) dw[j] += part[j];
          if (db != NULL) db[j] += part[n + j];
        }
      }
    }
    free(part);
    free(xhat);
  }
  return failed ? -1 : 0;
}

int norm_backward(float_dtype dt, int rms, const void* x, const void* w, const float* mean,
                  const float* rstd, const void* dy, int64_t rows, int64_t n, void* dx, double* dw,
                  double* db) {
  int status = 0;
#define CALL(D) status = norm_bwd_body(D, rms, x, w, mean, rstd, dy, rows, n, dx, dw, db)
  FOR_DTYPE(dt, CALL)
#undef CALL
  return status;
}
