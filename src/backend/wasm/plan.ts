/** How a job is cut into chunks that threads claim. */
export interface ChunkPlan {
  /** Chunks are blocks of rows (true) or of columns (false) of each product. */
  splitRows: boolean;
  /** Rows or columns per chunk. */
  block: number;
  /** Chunks per product. */
  blocks: number;
  /** Whether waking the workers is worth it. */
  parallel: boolean;
}

// Below this many multiply-adds a product takes about as long as waking a worker.
const PARALLEL_MIN_WORK = 64 ** 3;
// Chunks per thread: enough that a thread slowed by something else on the machine hands
// its share over, few enough that re-packing the shared operand stays a few percent.
const CHUNKS_PER_THREAD = 4;
// Chunk edges on a multiple of the micro-tile (4 rows x 8 columns) keep tiles full.
const UNIT = 8;
// Smallest block worth a chunk of its own.
const MIN_BLOCK = 32;

/**
 * Each chunk re-packs the operand it shares with the other chunks: B for row blocks, A
 * for column blocks. Splitting the larger of M and N re-packs the smaller operand.
 */
export function planChunks(
  M: number,
  N: number,
  K: number,
  count: number,
  threads: number,
): ChunkPlan {
  const splitRows = M >= N;
  const dim = splitRows ? M : N;
  if (threads <= 1 || count * M * N * K < PARALLEL_MIN_WORK) {
    return { splitRows, block: dim, blocks: 1, parallel: false };
  }
  const want = Math.ceil((CHUNKS_PER_THREAD * threads) / count);
  const block = Math.max(MIN_BLOCK, Math.ceil(dim / want / UNIT) * UNIT);
  const blocks = Math.ceil(dim / block);
  return { splitRows, block, blocks, parallel: count * blocks > 1 };
}
