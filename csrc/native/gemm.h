// The GEMM of the native backend on oneDNN.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { GEMM_F32 = 0, GEMM_BF16 = 1, GEMM_F16 = 2 } gemm_dtype;

// C[m, n] = op(A)[m, k] · op(B)[k, n], row-major, where op transposes when the flag is set.
// A, B and C all have the given dtype; the product accumulates in float32 and is rounded
// once to C's dtype. float16, and bfloat16 where oneDNN has no bfloat16 matmul, are
// widened to float32 first. Returns 0 on success, else a oneDNN status code.
int gemm_run(gemm_dtype dt, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
             const void* a, const void* b, void* c);

// A weight W [n, k] (row-major, as a linear layer holds it) copied into the layout
// oneDNN's matmul prefers for B = Wᵀ, so that y = x Wᵀ skips repacking W on every call.
typedef struct packed_weight {
  gemm_dtype dt;
  int64_t n, k;
  void* mem;  // the dnnl_memory_t holding the packed copy
} packed_weight;

// Whether oneDNN multiplies bfloat16 on this CPU (from AVX-512 on; not on AVX2).
bool gemm_bf16_native(void);

// Packs W (float32, or bfloat16 where gemm_bf16_native); *out is freed with gemm_pack_free.
// Returns 0, else a oneDNN status code.
int gemm_pack(gemm_dtype dt, int64_t n, int64_t k, const void* w, packed_weight** out);
void gemm_pack_free(packed_weight* p);
size_t gemm_pack_bytes(const packed_weight* p);
// C [m, n] = A [m, k] · Wᵀ in the packed weight's dtype. Returns 0, else a status code.
int gemm_run_packed(const packed_weight* p, int64_t m, const void* a, void* c);

// C = op(A) op(B) + beta C in float32 on oneDNN's sgemm, as attention (csrc/kernels)
// takes it; ctx is unused.
void gemm_sgemm(void* ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                const float* a, const float* b, float beta, float* c);

// Frees the calling thread's cached primitives (when its environment is torn down).
void gemm_release_thread(void);

// The instruction set oneDNN dispatches to (dnnl_cpu_isa_t) and its name.
const char* gemm_isa_name(void);
