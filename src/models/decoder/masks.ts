import { Tensor } from "../../tensor/tensor.js";

/**
 * bool [B or 1, 1, T, S]: may query i (at cache index past + i) see key j? Only if the
 * key is not padding, j <= past + i when causal, and j > past + i - window. The window
 * counts cache indices, as transformers' eager mask does, so left padding takes room in it.
 */
export function queryKeyMask(
  keyMask: Tensor | null,
  past: number,
  seq: number,
  window: number | null,
  causal: boolean,
): Tensor {
  const keys = past + seq;
  const batch = keyMask?.shape[0] ?? 1;
  const visible = keyMask?.data as Uint8Array | undefined;
  const out = new Uint8Array(batch * seq * keys);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < seq; i++) {
      const at = past + i;
      const row = (b * seq + i) * keys;
      const from = window === null ? 0 : Math.max(0, at - window + 1);
      const to = causal ? at : keys - 1;
      for (let j = from; j <= to; j++)
        out[row + j] = visible === undefined || visible[b * keys + j] ? 1 : 0;
    }
  }
  return new Tensor(out, [batch, 1, seq, keys], "bool");
}
