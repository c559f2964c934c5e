// bfloat16 products, and products with a packed weight, run on oneDNN matmul primitives,
// created once per (transposes, sizes, layout) and cached: creating one costs far more
// than running a small product, and training repeats the same few shapes every step.
#include "gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "../kernels/half.h"

#define CACHE_SIZE 64

typedef struct {
  int valid;
  gemm_dtype dt;
  bool ta, tb;
  // B in oneDNN's own blocked layout (a packed weight's), not row-major.
  bool packed;
  int64_t m, n, k;
  dnnl_primitive_t prim;
  dnnl_memory_desc_t a_md, b_md, c_md;
} entry;


// Per thread: Node's worker threads each load the addon into their own environment but
// share its globals, and neither a stream nor this cache may be used by two threads at
// once. A packed weight belongs to the thread (the environment) that made it.
static _Thread_local dnnl_engine_t engine;
static _Thread_local dnnl_stream_t stream;
static _Thread_local entry cache[CACHE_SIZE];
static _Thread_local int next_slot;

void gemm_release_thread(void) {
  for (int i = 0; i < CACHE_SIZE; i++) {
    if (cache[i].valid) dnnl_primitive_destroy(cache[i].prim);
    cache[i].valid = 0;
  }
}

static int ensure_engine(void) {
  if (engine != NULL) return dnnl_success;
  int s = dnnl_engine_create(&engine, dnnl_cpu, 0);
  if (s != dnnl_success) return s;
  return dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
}

// A row-major [rows, cols] matrix, or its transpose stored as [cols, rows].
static int plain_md(dnnl_memory_desc_t* md, int64_t rows, int64_t cols, bool transposed,
                    dnnl_data_type_t dt) {
  dnnl_dims_t dims = {rows, cols};
  dnnl_dims_t strides = {transposed ? 1 : cols, transposed ? rows : 1};
  return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

// The layout oneDNN's matmul prefers for B [k, n]. Measured with oneDNN 2.6 and 2.7 on
// AVX-512 (with and without BF16) and on AMX for m from 1 to 4096, its choice does not
// depend on m, so one packed copy serves every batch size; PACK_M is the m it is asked for.
#define PACK_M 1024

static int preferred_b_md(dnnl_data_type_t t, int64_t n, int64_t k, dnnl_memory_desc_t* md) {
  dnnl_memory_desc_t a_md, b_md, c_md;
  dnnl_dims_t a_dims = {PACK_M, k}, b_dims = {k, n}, c_dims = {PACK_M, n};
  int s;
  if ((s = dnnl_memory_desc_init_by_tag(&a_md, 2, a_dims, t, dnnl_ab)) != dnnl_success) return s;
  if ((s = dnnl_memory_desc_init_by_tag(&b_md, 2, b_dims, t, dnnl_format_tag_any)) != dnnl_success)
    return s;
  if ((s = dnnl_memory_desc_init_by_tag(&c_md, 2, c_dims, t, dnnl_ab)) != dnnl_success) return s;
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd;
  if ((s = dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md)) != dnnl_success) return s;
  if ((s = dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL)) != dnnl_success) return s;
  *md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  dnnl_primitive_desc_destroy(pd);
  return dnnl_success;
}

static entry* lookup(gemm_dtype dt, bool ta, bool tb, bool packed, int64_t m, int64_t n, int64_t k,
                     int* status) {
  for (int i = 0; i < CACHE_SIZE; i++) {
    entry* e = &cache[i];
    if (e->valid && e->dt == dt && e->ta == ta && e->tb == tb && e->packed == packed && e->m == m &&
        e->n == n && e->k == k)
      return e;
  }
  dnnl_data_type_t t = dt == GEMM_BF16 ? dnnl_bf16 : dnnl_f32;
  entry fresh = {1, dt, ta, tb, packed, m, n, k, NULL, {0}, {0}, {0}};
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd;
  if ((*status = plain_md(&fresh.a_md, m, k, ta, t)) != dnnl_success) return NULL;
  *status = packed ? preferred_b_md(t, n, k, &fresh.b_md) : plain_md(&fresh.b_md, k, n, tb, t);
  if (*status != dnnl_success) return NULL;
  if ((*status = plain_md(&fresh.c_md, m, n, false, t)) != dnnl_success) return NULL;
  if ((*status = dnnl_matmul_desc_init(&desc, &fresh.a_md, &fresh.b_md, NULL, &fresh.c_md)) !=
      dnnl_success)
    return NULL;
  if ((*status = dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL)) != dnnl_success)
    return NULL;
  *status = dnnl_primitive_create(&fresh.prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (*status != dnnl_success) return NULL;
  entry* slot = &cache[next_slot];
  next_slot = (next_slot + 1) % CACHE_SIZE;
  if (slot->valid) dnnl_primitive_destroy(slot->prim);
  *slot = fresh;
  return slot;
}

// Runs a cached primitive on A and C (row-major, wrapped here) and a ready B memory.
static int execute(const entry* e, const void* a, dnnl_memory_t mb, void* c) {
  dnnl_memory_t ma = NULL, mc = NULL;
  int s;
  if ((s = dnnl_memory_create(&ma, &e->a_md, engine, (void*)a)) == dnnl_success &&
      (s = dnnl_memory_create(&mc, &e->c_md, engine, c)) == dnnl_success) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
    s = dnnl_primitive_execute(e->prim, stream, 3, args);
    if (s == dnnl_success) s = dnnl_stream_wait(stream);
  }
  if (ma) dnnl_memory_destroy(ma);
  if (mc) dnnl_memory_destroy(mc);
  return s;
}

bool gemm_bf16_native(void) {
  // The same answer on every thread, so a race only repeats the question.
  static atomic_int known = -1;
  if (atomic_load(&known) < 0) {
    dnnl_memory_desc_t md;
    atomic_store(&known, ensure_engine() == dnnl_success &&
                             preferred_b_md(dnnl_bf16, 64, 64, &md) == dnnl_success);
  }
  return atomic_load(&known) == 1;
}

static int sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
                 const float* b, float* c) {
  return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n,
                    0.0f, c, n);
}

static float* widen(const uint16_t* src, int64_t count, gemm_dtype dt) {
  float* out = (float*)malloc((size_t)count * sizeof(float));
  if (out == NULL) return NULL;
#pragma omp parallel for if (count >= (1 << 16))
  for (int64_t i = 0; i < count; i++)
    out[i] = dt == GEMM_F16 ? f16_to_f32(src[i]) : bf16_to_f32(src[i]);
  return out;
}

// 16-bit operands widened to float32, multiplied on sgemm, the sums rounded once: the same
// product as a 16-bit GEMM that accumulates in float32, for CPUs oneDNN has none for.
static int widened(gemm_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                   const uint16_t* a, const uint16_t* b, uint16_t* c) {
  float* fa = widen(a, m * k, dt);
  float* fb = widen(b, k * n, dt);
  float* fc = (float*)malloc((size_t)(m * n) * sizeof(float));
  int s = dnnl_out_of_memory;
  if (fa != NULL && fb != NULL && fc != NULL) {
    s = sgemm(ta, tb, m, n, k, fa, fb, fc);
    if (s == dnnl_success) {
#pragma omp parallel for if (m * n >= (1 << 16))
      for (int64_t i = 0; i < m * n; i++)
        c[i] = dt == GEMM_F16 ? f32_to_f16(fc[i]) : f32_to_bf16(fc[i]);
    }
  }
  free(fa);
  free(fb);
  free(fc);
  return s;
}

int gemm_run(gemm_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void* a,
             const void* b, void* c) {
  // For float32, oneDNN's packed sgemm beats the matmul primitive on plain layouts.
  if (dt == GEMM_F32) return sgemm(ta, tb, m, n, k, a, b, c);
  if (dt == GEMM_F16 || !gemm_bf16_native()) return widened(dt, ta, tb, m, n, k, a, b, c);
  int s = ensure_engine();
  if (s != dnnl_success) return s;
  entry* e = lookup(dt, ta, tb, false, m, n, k, &s);
  if (e == NULL) return s;
  dnnl_memory_t mb = NULL;
  if ((s = dnnl_memory_create(&mb, &e->b_md, engine, (void*)b)) == dnnl_success)
    s = execute(e, a, mb, c);
  if (mb) dnnl_memory_destroy(mb);
  return s;
}

int gemm_pack(gemm_dtype dt, int64_t n, int64_t k, const void* w, packed_weight** out) {
  *out = NULL;
  if (dt == GEMM_F16 || (dt == GEMM_BF16 && !gemm_bf16_native())) return dnnl_unimplemented;
  int s = ensure_engine();
  if (s != dnnl_success) return s;
  dnnl_data_type_t t = dt == GEMM_BF16 ? dnnl_bf16 : dnnl_f32;
  dnnl_memory_desc_t plain, packed;
  if ((s = plain_md(&plain, k, n, true, t)) != dnnl_success) return s;
  if ((s = preferred_b_md(t, n, k, &packed)) != dnnl_success) return s;
  packed_weight* p = malloc(sizeof *p);
  if (p == NULL) return dnnl_out_of_memory;
  *p = (packed_weight){dt, n, k, NULL};
  dnnl_memory_t src = NULL;
  dnnl_primitive_desc_t rpd = NULL;
  dnnl_primitive_t reorder = NULL;
  if ((s = dnnl_memory_create((dnnl_memory_t*)&p->mem, &packed, engine, DNNL_MEMORY_ALLOCATE)) ==
          dnnl_success &&
      (s = dnnl_memory_create(&src, &plain, engine, (void*)w)) == dnnl_success &&
      (s = dnnl_reorder_primitive_desc_create(&rpd, &plain, engine, &packed, engine, NULL)) ==
          dnnl_success &&
      (s = dnnl_primitive_create(&reorder, rpd)) == dnnl_success) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, p->mem}};
    s = dnnl_primitive_execute(reorder, stream, 2, args);
    if (s == dnnl_success) s = dnnl_stream_wait(stream);
  }
  if (reorder) dnnl_primitive_destroy(reorder);
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (src) dnnl_memory_destroy(src);
  if (s != dnnl_success) {
    gemm_pack_free(p);
    return s;
  }
  *out = p;
  return dnnl_success;
}

void gemm_pack_free(packed_weight* p) {
  if (p == NULL) return;
  if (p->mem) dnnl_memory_destroy(p->mem);
  free(p);
}

size_t gemm_pack_bytes(const packed_weight* p) {
  const dnnl_memory_desc_t* md;
  if (dnnl_memory_get_memory_desc(p->mem, &md) != dnnl_success) return 0;
  return dnnl_memory_desc_get_size(md);
}

int gemm_run_packed(const packed_weight* p, int64_t m, const void* a, void* c) {
  int s;
  entry* e = lookup(p->dt, false, true, true, m, p->n, p->k, &s);
  if (e == NULL) return s;
  return execute(e, a, p->mem, c);
}

void gemm_sgemm(void* ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
                const float* b, float beta, float* c) {
  (void)ctx;
  dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n, beta, c,
             n);
}

const char* gemm_isa_name(void) {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "other";
  }
}
