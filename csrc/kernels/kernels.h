// Portable kernels shared by the native addon (and any other C build of the backend).
// Float data is float32, bfloat16 or float16 storage (float_dtype); every kernel computes
// in float32 and rounds its outputs once, as the reference backend does.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "half.h"

typedef enum { BIN_ADD = 0, BIN_SUB = 1, BIN_MUL = 2, BIN_DIV = 3 } binary_op;

// out = a (op) b over `ndim` output dims `shape`, reading a and b with their broadcast
// strides (0 on broadcast axes), all in elements.
void binary_strided(binary_op op, float_dtype dt, int ndim, const int64_t* shape,
                    const int64_t* a_strides, const int64_t* b_strides, const void* a, const void* b,
                    void* out);

// y = x converted between float dtypes, rounding to nearest even.
void cast_floats(float_dtype from, float_dtype to, const void* x, void* y, int64_t n);

// y = x * sigmoid(x); and its backward dx = dy * s (1 + x (1 - s)).
void silu_forward(float_dtype dt, const void* x, void* y, int64_t n);
void silu_backward(float_dtype dt, const void* x, const void* dy, void* dx, int64_t n);

// y = round(silu(gate)) * up, Llama's gated activation; and its backward into dgate and dup.
void silu_mul_forward(float_dtype dt, const void* gate, const void* up, void* y, int64_t n);
void silu_mul_backward(float_dtype dt, const void* gate, const void* up, const void* dy,
                       void* dgate, void* dup, int64_t n);

// Cross-entropy of each [classes] row of logits against its target; ignored rows give 0.
void cross_entropy_forward(float_dtype dt, const void* logits, const int32_t* targets, int64_t rows,
                           int64_t classes, int32_t ignore_index, float* loss, float* lse);
// dlogits = (softmax - onehot) * dloss[row]; zero rows where the target is ignored.
void cross_entropy_backward(float_dtype dt, const void* logits, const int32_t* targets,
                            const float* lse, const float* dloss, int64_t rows, int64_t classes,
                            int32_t ignore_index, void* dlogits);

// out[i] = code[nibble(start + i)] · absmax[(start + i) / blocksize] for i < count: the
// bitsandbytes 4-bit layout, two codes per byte, the even-indexed element in the high nibble.
void dequantize_4bit(float_dtype dt, const uint8_t* packed, const float* code, const float* absmax,
                     int64_t blocksize, int64_t start, int64_t count, void* out);

// LayerNorm (rms 0) or RMSNorm (rms 1) over rows of n; w and b optional ([n], the dtype).
// mean (LayerNorm only) and rstd are per-row float32 statistics for the backward pass.
void norm_forward(float_dtype dt, int rms, const void* x, const void* w, const void* b, int64_t rows,
                  int64_t n, double eps, void* y, float* mean, float* rstd);
// dx, and dw and db (float64 sums, added into; either may be NULL). The workspace holds
// norm_backward_workspace(rows, n) doubles.
int64_t norm_backward_workspace(int64_t rows, int64_t n);
void norm_backward(float_dtype dt, int rms, const void* x, const void* w, const float* mean,
                   const float* rstd, const void* dy, int64_t rows, int64_t n, void* dx, double* dw,
                   double* db, double* workspace);

// Rotary embedding of x [batch, heads, seq, dim] with cos and sin [cos_batch, seq, dim];
// inverse applies the transpose (the backward pass).
void rope_apply(float_dtype dt, const void* x, const void* cos, const void* sin, int64_t batch,
                int64_t heads, int64_t seq, int64_t dim, int64_t cos_batch, int inverse, void* y);

// y (contiguous, `shape`) = the elements of x at offset + sum(index[d] * strides[d]);
// elements are `elem` bytes (1, 2, 4 or 8), so any dtype can be moved.
void strided_copy(int elem, int ndim, const int64_t* shape, const int64_t* strides, int64_t offset,
                  const void* x, void* y);
