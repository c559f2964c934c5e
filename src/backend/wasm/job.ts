/**
 * The job block the wasm kernels and the JavaScript side share: 32-bit words in the wasm
 * memory, laid out as the JOB_* enum in csrc/wasm/gemm.c (peft_job_words() reports its
 * length, checked when the module loads).
 */
export const JOB = {
  SEQ: 0,
  CLAIM: 1,
  FINISHED: 2,
  CHUNKS: 3,
  FAILED: 4,
  A: 5,
  B: 6,
  ACC: 7,
  OUT: 8,
  A_INDEX: 9,
  B_INDEX: 10,
  M: 11,
  N: 12,
  K: 13,
  FLAGS: 14,
  BLOCKS: 15,
  BLOCK: 16,
  SPLIT_ROWS: 17,
  WORDS: 18,
} as const;

/** JOB.CLAIM between jobs: any claim made then is past every chunk count. */
export const JOB_CLOSED = 0x40000000;

/** Bits of JOB.FLAGS. */
export const FLAG_TRANS_A = 1;
export const FLAG_TRANS_B = 2;
export const FLAG_BF16 = 4;
