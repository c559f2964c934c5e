import type { Backend } from "../src/backend/backend.js";
import type { FloatDType } from "../src/backend/dtype.js";
import { getBackend } from "../src/backend/registry.js";
import { loraStep } from "./lora-step.js";
import { build } from "./qlora.js";
import { arg, wrapBackend } from "./util.js";

/**
 * Where a LoRA training step spends its time, kernel by kernel, on the active backend:
 * every kernel call is timed (the first step, a warm-up, is not counted). Options:
 * --layers N (4), --batch BxT (4x256), --dtype float32|bfloat16, --runs N (2), --nf4 (the
 * decoder's linear layers NF4 with double quant, computing in --dtype: a QLoRA step).
 */
export function main(args: string[]): void {
  const layers = Number(arg(args, "layers", "4"));
  const dtype = arg(args, "dtype", "float32") as FloatDType;
  const runs = Number(arg(args, "runs", "2"));
  const [batch, seq] = arg(args, "batch", "4x256").split("x").map(Number);
  const totals = new Map<string, { seconds: number; calls: number }>();
  let counting = false;
  // --detail names broadcast arithmetic by shapes and dtype and casts by dtypes and size.
  const detail = args.includes("--detail");
  wrapBackend((name, a, call) => {
    const t0 = process.hrtime.bigint();
    const out = call();
    if (counting) {
      const key = kernelKey(name, a, detail);
      const entry = totals.get(key) ?? { seconds: 0, calls: 0 };
      entry.seconds += Number(process.hrtime.bigint() - t0) / 1e9;
      entry.calls++;
      totals.set(key, entry);
    }
    return out;
  });
  const nf4 = args.includes("--nf4");
  const model = build(layers, dtype, nf4);
  const step = loraStep(model, batch, seq);
  step();
  counting = true;
  const faults0 = process.resourceUsage().minorPageFault;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) step();
  const faults = (process.resourceUsage().minorPageFault - faults0) / runs;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9 / runs;
  const kernels = [...totals.values()].reduce((s, e) => s + e.seconds, 0) / runs;
  console.log(
    `${(getBackend() as Backend).name} backend, ${nf4 ? "NF4 base computing in " : ""}${dtype}, ${layers} layers, batch ${batch}x${seq}: step ${seconds.toFixed(3)} s, kernels ${kernels.toFixed(3)} s, ${Math.round(faults)} page faults per step`,
  );
  for (const [name, e] of [...totals.entries()].sort((x, y) => y[1].seconds - x[1].seconds)) {
    console.log(
      `${name.padEnd(22)} ${(e.seconds / runs).toFixed(3).padStart(8)} s ${String(e.calls / runs).padStart(6)} calls`,
    );
  }
}

/** How the profile names one kernel call: matmuls by shape, arithmetic by op (and with --detail, shapes and dtypes). */
function kernelKey(name: string, a: unknown[], detail: boolean): string {
  const shape = (s: unknown) => (s as number[]).join("x");
  if (detail && name === "binary") return `binary:${a[0]}:${shape(a[2])}+${shape(a[4])}:${a[6]}`;
  if (detail && name === "cast")
    return `cast:${a[1]}→${a[2]}:${(a[0] as { length: number }).length}`;
  if (name === "unary" || name === "binary") return `${name}:${a[0]}`;
  if (name === "matmul")
    return `matmul:${shape(a[1])}${a[4] ? "ᵀ" : ""}·${shape(a[3])}${a[5] ? "ᵀ" : ""}`;
  return name;
}
