// Blocked SGEMM for WebAssembly SIMD128: C[M,N] = op(A)[M,K] · op(B)[K,N], row-major,
// float32 or bfloat16 operands (widened exactly while packing), float32 accumulation,
// the bf16 result rounded once (nearest, ties to even) as src/backend/half.ts does.
//
// Goto/BLIS structure: a KC-deep slab of B is packed into NR-wide column panels, an
// MC x KC block of A into MR-tall row panels, and an MR x NR micro-kernel streams one
// panel of each with every accumulator in a register. Packing turns all four transpose
// cases into the same contiguous access and zero-pads ragged edges, so the kernel never
// branches on shape.
//
// Threads: a job (peft_run) is a batch of same-shaped products cut into row or column
// blocks that every thread claims from one atomic counter, each packing into its own
// workspace. Blocks never share an output element and each element is summed over K in
// the same order whoever computes it, so the result does not depend on the thread count.
//
// V8 runs f32x4 on 128-bit SSE/AVX registers, 16 of them on x64 and one kept as scratch:
// the 4 x 8 tile (8 accumulators, 2 B vectors, 1 broadcast A value, 1 product) fits.
// Measured on Zen 5 under Node 20, 4 x 12, 4 x 16, 6 x 8 and 8 x 8 tiles spill and run at
// 55-65% of its speed, and unrolling the K loop costs a third for the same reason.
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#ifndef MR
#define MR 4
#endif
#ifndef NR
#define NR 8
#endif
#ifndef KC
#define KC 256
#endif
#ifndef MC
#define MC 128
#endif
#ifndef NC
#define NC 3072
#endif
#define NV (NR / 4)

#if MC % MR != 0 || NC % NR != 0 || NR % 4 != 0
#error "block sizes must be multiples of the micro-tile"
#endif

// Fused multiply-add where relaxed SIMD allows it (one rounding, one instruction on
// FMA hardware), else a multiply and an add.
#ifdef PEFT_RELAXED
#define MADD(acc, a, b) wasm_f32x4_relaxed_madd((a), (b), (acc))
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#endif

enum {
  FLAG_TRANS_A = 1,
  FLAG_TRANS_B = 2,
  FLAG_BF16 = 4,  // A and B are bfloat16 bits and C is written as bfloat16
  FLAG_ACCUMULATE = 8,  // C += the product (float32 only; never set by a job)
};

static inline float bf16_to_f32(uint16_t h) { return __builtin_bit_cast(float, (uint32_t)h << 16); }

static inline uint16_t f32_to_bf16(float f) {
  uint32_t x = __builtin_bit_cast(uint32_t, f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // PyTorch's canonical NaN
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// Four consecutive elements widened to f32x4.
static inline v128_t load4_f32(const float* p) { return wasm_v128_load(p); }
static inline v128_t load4_bf16(const uint16_t* p) {
  return wasm_i32x4_shl(wasm_u32x4_load16x4(p), 16);
}
static inline float load1_f32(const float* p) { return *p; }
static inline float load1_bf16(const uint16_t* p) { return bf16_to_f32(*p); }

// Transposes four f32x4 rows in place.
#define TRANSPOSE4(r0, r1, r2, r3)                        \
  do {                                                    \
    v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);   \
    v128_t t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);   \
    v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);   \
    v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);   \
    r0 = wasm_i64x2_shuffle(t0, t2, 0, 2);                \
    r1 = wasm_i64x2_shuffle(t0, t2, 1, 3);                \
    r2 = wasm_i64x2_shuffle(t1, t3, 0, 2);                \
    r3 = wasm_i64x2_shuffle(t1, t3, 1, 3);                \
  } while (0)

// Packing. A panel of width R (MR for A, NR for B) holds, for each p < kc, the R values
// dst[p * R + c] = src(p, c) for c < w, zero for w <= c < R. Two source layouts occur:
//   "rows":  src(p, c) = src[p * ld + c]  (A transposed, B as is): R contiguous values per p
//   "cols":  src(p, c) = src[c * ld + p]  (A as is, B transposed): kc contiguous values per c
// Both are generated for f32 and bf16 sources.
#define DEFINE_PACK(T, SUFFIX)                                                                  \
  static void pack_rows_##SUFFIX(float* restrict dst, const T* restrict src, size_t ld, int kc, \
                                 int w, int R) {                                                \
    if (w == R && R % 4 == 0) {                                                                 \
      for (int p = 0; p < kc; ++p, dst += R, src += ld) {                                       \
        for (int c = 0; c < R; c += 4) wasm_v128_store(dst + c, load4_##SUFFIX(src + c));       \
      }                                                                                         \
      return;                                                                                   \
    }                                                                                           \
    for (int p = 0; p < kc; ++p, dst += R, src += ld) {                                         \
      int c = 0;                                                                                \
      for (; c < w; ++c) dst[c] = load1_##SUFFIX(src + c);                                      \
      for (; c < R; ++c) dst[c] = 0.0f;                                                         \
    }                                                                                           \
  }                                                                                             \
                                                                                                \
  static void pack_cols_##SUFFIX(float* restrict dst, const T* restrict src, size_t ld, int kc, \
                                 int w, int R) {                                                \
    int c = 0;                                                                                  \
    /* Four source rows at a time: 4 x 4 blocks transposed in registers. */                     \
    for (; c + 4 <= w; c += 4) {                                                                \
      const T* s0 = src + (size_t)c * ld;                                                       \
      const T* s1 = s0 + ld;                                                                    \
      const T* s2 = s1 + ld;                                                                    \
      const T* s3 = s2 + ld;                                                                    \
      int p = 0;                                                                                \
      for (; p + 4 <= kc; p += 4) {                                                             \
        v128_t r0 = load4_##SUFFIX(s0 + p), r1 = load4_##SUFFIX(s1 + p);                        \
        v128_t r2 = load4_##SUFFIX(s2 + p), r3 = load4_##SUFFIX(s3 + p);                        \
        TRANSPOSE4(r0, r1, r2, r3);                                                             \
        wasm_v128_store(dst + (p + 0) * R + c, r0);                                             \
        wasm_v128_store(dst + (p + 1) * R + c, r1);                                             \
        wasm_v128_store(dst + (p + 2) * R + c, r2);                                             \
        wasm_v128_store(dst + (p + 3) * R + c, r3);                                             \
      }                                                                                         \
      for (; p < kc; ++p) {                                                                     \
        dst[p * R + c + 0] = load1_##SUFFIX(s0 + p);                                            \
        dst[p * R + c + 1] = load1_##SUFFIX(s1 + p);                                            \
        dst[p * R + c + 2] = load1_##SUFFIX(s2 + p);                                            \
        dst[p * R + c + 3] = load1_##SUFFIX(s3 + p);                                            \
      }                                                                                         \
    }                                                                                           \
    for (; c < w; ++c) {                                                                        \
      const T* s = src + (size_t)c * ld;                                                        \
      for (int p = 0; p < kc; ++p) dst[p * R + c] = load1_##SUFFIX(s + p);                      \
    }                                                                                           \
    for (; c < R; ++c) {                                                                        \
      for (int p = 0; p < kc; ++p) dst[p * R + c] = 0.0f;                                       \
    }                                                                                           \
  }

DEFINE_PACK(float, f32)
DEFINE_PACK(uint16_t, bf16)

// The micro-kernel: acc[MR][NR] = sum over p of ap[p][r] * bp[p][c], then C = acc (first
// K slab) or C += acc (later slabs). Edge tiles go through `tile` so C is never written
// outside [0, mr) x [0, nr).
static inline void kernel(int kc, const float* restrict ap, const float* restrict bp,
                          float* restrict c, size_t ldc, int accumulate, int mr, int nr,
                          float* restrict tile) {
  v128_t acc[MR][NV];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; ++r) {
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; ++v) acc[r][v] = wasm_f32x4_splat(0.0f);
  }
  for (int p = 0; p < kc; ++p) {
    v128_t b[NV];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; ++v) b[v] = wasm_v128_load(bp + 4 * v);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; ++r) {
      v128_t a = wasm_v128_load32_splat(ap + r);
#pragma clang loop unroll(full)
      for (int v = 0; v < NV; ++v) acc[r][v] = MADD(acc[r][v], a, b[v]);
    }
    ap += MR;
    bp += NR;
  }
  if (mr == MR && nr == NR) {
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; ++r) {
#pragma clang loop unroll(full)
      for (int v = 0; v < NV; ++v) {
        float* dst = c + r * ldc + 4 * v;
        v128_t x = accumulate ? wasm_f32x4_add(wasm_v128_load(dst), acc[r][v]) : acc[r][v];
        wasm_v128_store(dst, x);
      }
    }
    return;
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; ++r) {
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; ++v) wasm_v128_store(tile + r * NR + 4 * v, acc[r][v]);
  }
  for (int r = 0; r < mr; ++r) {
    for (int j = 0; j < nr; ++j) {
      float x = tile[r * NR + j];
      c[r * ldc + j] = accumulate ? c[r * ldc + j] + x : x;
    }
  }
}

static inline int min_int(int a, int b) { return a < b ? a : b; }

// Bytes of workspace one thread needs: a packed A block, a packed B slab and an edge tile.
#define WORK_FLOATS ((size_t)MC * KC + (size_t)KC * NC + (size_t)MR * NR)

__attribute__((export_name("peft_gemm_workspace"))) size_t peft_gemm_workspace(void) {
  return WORK_FLOATS * sizeof(float);
}

// Computes rows [m0, m1) and columns [n0, n1) of C. `acc` is an M x N float32 buffer the
// product is accumulated in; with FLAG_BF16 the rectangle is then rounded into `out`
// (bfloat16, M x N), otherwise `out` is unused and the result is `acc`. `work` holds
// peft_gemm_workspace() bytes, 16-byte aligned, private to the calling thread.
__attribute__((noinline)) static void gemm_rect(const void* a, const void* b, float* acc,
                                                 uint16_t* out, int M, int N,
                      int K, int flags, int m0, int m1, int n0, int n1, float* work) {
  const int transA = flags & FLAG_TRANS_A, transB = flags & FLAG_TRANS_B;
  const int bf16 = flags & FLAG_BF16, accumulate = flags & FLAG_ACCUMULATE;
  float* ap = work;
  float* bp = ap + (size_t)MC * KC;
  float* tile = bp + (size_t)KC * NC;
  const size_t ldc = (size_t)N;

  if (K == 0 && !accumulate) {
    for (int i = m0; i < m1; ++i) {
      for (int j = n0; j < n1; ++j) acc[i * ldc + j] = 0.0f;
    }
  }
  for (int jc = n0; jc < n1; jc += NC) {
    const int nc = min_int(NC, n1 - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = min_int(KC, K - pc);
      // B(p, j): B[p * N + j] as is, B[j * K + p] transposed.
      for (int jr = 0; jr < nc; jr += NR) {
        const int w = min_int(NR, nc - jr);
        const size_t off = transB ? (size_t)(jc + jr) * K + pc : (size_t)pc * N + jc + jr;
        float* dst = bp + (size_t)jr * kc;
        const size_t ld = transB ? (size_t)K : (size_t)N;
        if (bf16) {
          const uint16_t* src = (const uint16_t*)b + off;
          if (transB) pack_cols_bf16(dst, src, ld, kc, w, NR);
          else pack_rows_bf16(dst, src, ld, kc, w, NR);
        } else {
          const float* src = (const float*)b + off;
          if (transB) pack_cols_f32(dst, src, ld, kc, w, NR);
          else pack_rows_f32(dst, src, ld, kc, w, NR);
        }
      }
      for (int ic = m0; ic < m1; ic += MC) {
        const int mc = min_int(MC, m1 - ic);
        // A(i, p): A[i * K + p] as is, A[p * M + i] transposed.
        for (int ir = 0; ir < mc; ir += MR) {
          const int h = min_int(MR, mc - ir);
          const size_t off = transA ? (size_t)pc * M + ic + ir : (size_t)(ic + ir) * K + pc;
          float* dst = ap + (size_t)ir * kc;
          const size_t ld = transA ? (size_t)M : (size_t)K;
          if (bf16) {
            const uint16_t* src = (const uint16_t*)a + off;
            if (transA) pack_rows_bf16(dst, src, ld, kc, h, MR);
            else pack_cols_bf16(dst, src, ld, kc, h, MR);
          } else {
            const float* src = (const float*)a + off;
            if (transA) pack_rows_f32(dst, src, ld, kc, h, MR);
            else pack_cols_f32(dst, src, ld, kc, h, MR);
          }
        }
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = min_int(NR, nc - jr);
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = min_int(MR, mc - ir);
            kernel(kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc,
                   acc + (size_t)(ic + ir) * ldc + jc + jr, ldc, pc > 0 || accumulate, mr, nr,
                   tile);
          }
        }
      }
    }
  }
  if (bf16) {
    for (int i = m0; i < m1; ++i) {
      for (int j = n0; j < n1; ++j) out[i * ldc + j] = f32_to_bf16(acc[i * ldc + j]);
    }
  }
}

// C[m, n] = op(A) op(B) + beta C (beta 0 or 1), float32, on the calling thread: the
// products inside the portable attention kernel (csrc/kernels/attention.h). ctx is a
// peft_gemm_workspace() buffer.
void wasm_sgemm(void* ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
                const float* b, float beta, float* c) {
  const int flags = (ta ? FLAG_TRANS_A : 0) | (tb ? FLAG_TRANS_B : 0) |
                    (beta != 0.0f ? FLAG_ACCUMULATE : 0);
  gemm_rect(a, b, c, NULL, (int)m, (int)n, (int)k, flags, 0, (int)m, 0, (int)n, (float*)ctx);
}

// A job: `count` products of the same shape, cut into chunks (row or column blocks of one
// product) that threads claim one at a time, so a thread that starts late or runs slow
// simply takes fewer. The layout is mirrored in src/backend/wasm/job.ts.
enum {
  JOB_SEQ,        // bumped by the main thread to wake the workers (they wait on it)
  JOB_CLAIM,      // the next chunk to hand out; JOB_CLOSED between jobs
  JOB_FINISHED,   // chunks completed; the main thread waits for it to reach JOB_CHUNKS
  JOB_CHUNKS,     // count * blocks
  JOB_FAILED,     // set by a worker whose run trapped
  JOB_A,          // first A matrix (float32 or bfloat16)
  JOB_B,          // first B matrix
  JOB_ACC,        // count * M * N float32
  JOB_OUT,        // count * M * N bfloat16 (with FLAG_BF16)
  JOB_A_INDEX,    // int32[count]: which A matrix product t reads (batch broadcasting)
  JOB_B_INDEX,    // int32[count]: which B matrix
  JOB_M,
  JOB_N,
  JOB_K,
  JOB_FLAGS,
  JOB_BLOCKS,     // chunks per product
  JOB_BLOCK,      // rows (or columns) per chunk, a multiple of MR (or NR)
  JOB_SPLIT_ROWS, // 1: chunks are row blocks, 0: column blocks
  JOB_WORDS
};
#define JOB_CLOSED 0x40000000

static void run_chunk(const int32_t* job, int chunk, float* work) {
  const int M = job[JOB_M], N = job[JOB_N], K = job[JOB_K], flags = job[JOB_FLAGS];
  const int blocks = job[JOB_BLOCKS], block = job[JOB_BLOCK];
  const int t = chunk / blocks, lo = (chunk % blocks) * block;
  const size_t es = (flags & FLAG_BF16) ? 2 : 4;
  const size_t mk = (size_t)M * K, kn = (size_t)K * N, mn = (size_t)M * N;
  const char* a = (const char*)(uintptr_t)job[JOB_A] +
                  (size_t)((const int32_t*)(uintptr_t)job[JOB_A_INDEX])[t] * mk * es;
  const char* b = (const char*)(uintptr_t)job[JOB_B] +
                  (size_t)((const int32_t*)(uintptr_t)job[JOB_B_INDEX])[t] * kn * es;
  float* acc = (float*)(uintptr_t)job[JOB_ACC] + t * mn;
  uint16_t* out = (uint16_t*)(uintptr_t)job[JOB_OUT] + t * mn;
  if (job[JOB_SPLIT_ROWS]) {
    gemm_rect(a, b, acc, out, M, N, K, flags, lo, min_int(M, lo + block), 0, N, work);
  } else {
    gemm_rect(a, b, acc, out, M, N, K, flags, 0, M, lo, min_int(N, lo + block), work);
  }
}

// Claims and computes chunks of `job` until none is left, and returns how many it
// computed. Every thread (the caller's and each worker) runs this with its own workspace;
// the thread that completes the last chunk wakes the main thread.
__attribute__((export_name("peft_run"))) int peft_run(int32_t* job, float* work) {
  for (int done = 0;; ++done) {
    const int chunk = __atomic_fetch_add(&job[JOB_CLAIM], 1, __ATOMIC_SEQ_CST);
    const int chunks = __atomic_load_n(&job[JOB_CHUNKS], __ATOMIC_SEQ_CST);
    if (chunk >= chunks) return done;
    run_chunk(job, chunk, work);
    if (__atomic_add_fetch(&job[JOB_FINISHED], 1, __ATOMIC_SEQ_CST) == chunks) {
      __builtin_wasm_memory_atomic_notify(&job[JOB_FINISHED], 1);
    }
  }
}

__attribute__((export_name("peft_job_words"))) int peft_job_words(void) { return JOB_WORDS; }
