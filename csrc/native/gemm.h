// The GEMM of the native backend on oneDNN.
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef enum { GEMM_F32 = 0, GEMM_BF16 = 1 } gemm_dtype;

// C[m, n] = op(A)[m, k] · op(B)[k, n], row-major, where op transposes when the flag is set.
// A, B and C all have the given dtype; the product accumulates in float32 and is rounded
// once to C's dtype. Returns 0 on success, else a oneDNN status code.
int gemm_run(gemm_dtype dt, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
             const void* a, const void* b, void* c);

// C = op(A) op(B) + beta C in float32 on oneDNN's sgemm, as attention (csrc/kernels)
// takes it; ctx is unused.
void gemm_sgemm(void* ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                const float* a, const float* b, float beta, float* c);

// The instruction set oneDNN dispatches to (dnnl_cpu_isa_t) and its name.
const char* gemm_isa_name(void);
