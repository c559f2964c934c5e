// bfloat16 products run on oneDNN matmul primitives, created once per (transposes, sizes) and cached:
// creating one costs far more than running a small product, and training repeats the
// same few shapes every step.
#include "gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <stddef.h>

#define CACHE_SIZE 64

typedef struct {
  int valid;
  gemm_dtype dt;
  bool ta, tb;
  int64_t m, n, k;
  dnnl_primitive_t prim;
  dnnl_memory_desc_t a_md, b_md, c_md;
} entry;

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static entry cache[CACHE_SIZE];
static int next_slot;

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

static entry* lookup(gemm_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, int* status) {
  for (int i = 0; i < CACHE_SIZE; i++) {
    entry* e = &cache[i];
    if (e->valid && e->dt == dt && e->ta == ta && e->tb == tb && e->m == m && e->n == n && e->k == k)
      return e;
  }
  dnnl_data_type_t t = dt == GEMM_BF16 ? dnnl_bf16 : dnnl_f32;
  entry fresh = {1, dt, ta, tb, m, n, k, NULL, {0}, {0}, {0}};
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd;
  if ((*status = plain_md(&fresh.a_md, m, k, ta, t)) != dnnl_success) return NULL;
  if ((*status = plain_md(&fresh.b_md, k, n, tb, t)) != dnnl_success) return NULL;
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

int gemm_run(gemm_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void* a,
             const void* b, void* c) {
  // For float32, oneDNN's packed sgemm beats the matmul primitive on plain layouts.
  if (dt == GEMM_F32)
    return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, (const float*)a, ta ? m : k,
                      (const float*)b, tb ? k : n, 0.0f, (float*)c, n);
  int s = ensure_engine();
  if (s != dnnl_success) return s;
  entry* e = lookup(dt, ta, tb, m, n, k, &s);
  if (e == NULL) return s;
  dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
  if ((s = dnnl_memory_create(&ma, &e->a_md, engine, (void*)a)) == dnnl_success &&
      (s = dnnl_memory_create(&mb, &e->b_md, engine, (void*)b)) == dnnl_success &&
      (s = dnnl_memory_create(&mc, &e->c_md, engine, c)) == dnnl_success) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
    s = dnnl_primitive_execute(e->prim, stream, 3, args);
    if (s == dnnl_success) s = dnnl_stream_wait(stream);
  }
  if (ma) dnnl_memory_destroy(ma);
  if (mb) dnnl_memory_destroy(mb);
  if (mc) dnnl_memory_destroy(mc);
  return s;
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
