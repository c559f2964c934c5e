// Cross-entropy over rows of logits, the largest tensors of a language-model step
// ([tokens, vocab]): one pass for the max, one for the sum of exponentials (blocks of
// float32 partial sums added in float64), rows split across threads.
#include "dispatch.h"
#include "kernels.h"
#include "math.h"
#include "reduce.h"

// max + log(sum(e^(x - max))) with no shortcut for special rows, so that they come out
// as the reference's formula has them: NaN for a row with a NaN (in the sum, since the
// max skips it), a +inf (e^(inf - inf)) or nothing but -inf (e^(-inf + inf)), and -inf
// for an empty row.
KERNEL float row_lse(float_dtype dt, const void* x, int64_t at, int64_t n) {
  const float max = lanes_max(dt, x, at, n);
  return (float)(max + log_f64(lanes_sum_exp(dt, x, at, n, max)));
}

KERNEL void ce_fwd_rows(float_dtype dt, const void* x, const int32_t* t, int64_t n, int32_t ignore,
                        float* loss, float* lse, int64_t lo, int64_t hi) {
  for (int64_t r = lo; r < hi; r++) {
    float l = row_lse(dt, x, r * n, n);
    lse[r] = l;
    loss[r] = t[r] == ignore ? 0.0f : l - load_f(x, dt, r * n + t[r]);
  }
}

void cross_entropy_forward(float_dtype dt, const void* logits, const int32_t* targets, int64_t rows,
                           int64_t classes, int32_t ignore_index, float* loss, float* lse) {
#define CALL(D, lo, hi) ce_fwd_rows(D, logits, targets, classes, ignore_index, loss, lse, lo, hi)
  PARALLEL_FOR_DTYPE(dt, rows, rows * classes, CALL)
#undef CALL
}

KERNEL void ce_bwd_rows(float_dtype dt, const void* x, const int32_t* t, const float* lse,
                        const float* dloss, int64_t n, int32_t ignore, void* dx, int64_t lo,
                        int64_t hi) {
  for (int64_t r = lo; r < hi; r++) {
    const int64_t at = r * n;
    if (t[r] == ignore) {
      for (int64_t c = 0; c < n; c++) store_f(dx, dt, at + c, 0.0f);
      continue;
    }
    const float g = dloss[r], l = lse[r];
    // Subnormal gradients are flushed: they change the next product (dlogits · W, taken
    // at the head's 49,152 columns) by less than 2^-126 each, and cost it twice its time.
    for (int64_t c = 0; c < n; c++)
      store_f(dx, dt, at + c, flush_subnormal(g * exp_f32(load_f(x, dt, at + c) - l)));
    store_f(dx, dt, at + t[r], flush_subnormal(g * exp_f32(load_f(x, dt, at + t[r]) - l) - g));
  }
}

void cross_entropy_backward(float_dtype dt, const void* logits, const int32_t* targets,
                            const float* lse, const float* dloss, int64_t rows, int64_t classes,
                            int32_t ignore_index, void* dlogits) {
#define CALL(D, lo, hi) \
  ce_bwd_rows(D, logits, targets, lse, dloss, classes, ignore_index, dlogits, lo, hi)
  PARALLEL_FOR_DTYPE(dt, rows, rows * classes, CALL)
#undef CALL
}
