import { fileURLToPath } from "node:url";
import { SafetensorsFile } from "../../src/io/safetensors/reader.js";
import type { Tensor } from "../../src/tensor/tensor.js";

/** Absolute path of a file under test/fixtures. */
export function fixturePath(relative: string): string {
  return fileURLToPath(new URL(`../fixtures/${relative}`, import.meta.url));
}

/** All tensors of a reference file under test/fixtures/reference. */
export function reference(name: string): Map<string, Tensor> {
  const file = SafetensorsFile.open(fixturePath(`reference/${name}.safetensors`));
  try {
    return file.loadAll();
  } finally {
    file.close();
  }
}

/** max |a - b| over positions where keep(row index of the last axis) holds. */
export function maxAbsError(a: Tensor, b: Tensor, keepRow?: (row: number) => boolean): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  if (x.length !== y.length) throw new Error(`sizes differ: ${a.shape} vs ${b.shape}`);
  const last = a.shape[a.ndim - 1];
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    if (keepRow && !keepRow(Math.floor(i / last))) continue;
    m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  return m;
}
