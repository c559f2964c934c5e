import { ShapeError } from "../errors.js";
import type { Module } from "../nn/module.js";
import { Tensor } from "../tensor/tensor.js";
import { Linear4bit } from "./linear4bit.js";

/** bitsandbytes' quant-state JSON blob, formatted as Python's json.dumps writes it. */
function stateBlob(l: Linear4bit): Uint8Array {
  const s = l.state;
  const fields: [string, unknown][] = [
    ["quant_type", s.quantType],
    ["blocksize", s.blocksize],
    ["dtype", s.dtype],
    ["shape", s.shape],
  ];
  if (s.nested !== null) {
    fields.push(
      ["nested_blocksize", s.nested.blocksize],
      ["nested_dtype", "float32"],
      ["nested_offset", s.nested.offset],
    );
  }
  const json = `{${fields.map(([k, v]) => `"${k}": ${JSON.stringify(v).replace(/,/g, ", ")}`).join(", ")}}`;
  return new TextEncoder().encode(json);
}

/** The packed bytes as the layer's storage dtype: [bytes / itemsize, 1], the same bytes. */
function storedWeight(l: Linear4bit): Tensor {
  const bytes = l.packed;
  if (l.quantStorage === "uint8") return new Tensor(bytes, [bytes.length, 1], "uint8");
  const itemsize = l.quantStorage === "float32" ? 4 : 2;
  if (bytes.length % itemsize !== 0)
    throw new ShapeError(
      l.path,
      `${bytes.length} packed bytes cannot be stored as ${l.quantStorage} (${itemsize} bytes per element)`,
    );
  const copy = bytes.slice().buffer;
  const data = itemsize === 4 ? new Float32Array(copy) : new Uint16Array(copy);
  return new Tensor(data, [bytes.length / itemsize, 1], l.quantStorage);
}

/**
 * The model's state dict with every Linear4bit written in bitsandbytes' serialised layout
 * (`weight` packed [n/2, 1] uint8 or the same bytes as the storage dtype, `weight.absmax`, `weight.quant_map`, the nested
 * statistics under double quantisation, and `weight.quant_state.bitsandbytes__<type>`).
 */
export function quantizedStateDict(model: Module): Map<string, Tensor> {
  const out = model.stateDict();
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof Linear4bit)) continue;
    const p = `${path}.weight`;
    const s = m.state;
    out.set(p, storedWeight(m));
    if (s.nested === null) {
      out.set(`${p}.absmax`, new Tensor(s.absmax, [s.absmax.length], "float32"));
    } else {
      out.set(`${p}.absmax`, new Tensor(s.nested.codes, [s.nested.codes.length], "uint8"));
      out.set(
        `${p}.nested_absmax`,
        new Tensor(s.nested.absmax, [s.nested.absmax.length], "float32"),
      );
      out.set(`${p}.nested_quant_map`, new Tensor(s.nested.map, [s.nested.map.length], "float32"));
    }
    out.set(`${p}.quant_map`, new Tensor(s.code, [s.code.length], "float32"));
    const blob = stateBlob(m);
    out.set(
      `${p}.quant_state.bitsandbytes__${s.quantType}`,
      new Tensor(blob, [blob.length], "uint8"),
    );
  }
  return out;
}

/** transformers' quantization_config for a model whose Linear4bit layers share these settings. */
export function quantizationConfig(model: Module): Record<string, unknown> | null {
  const layer = [...model.namedModules()]
    .map(([, m]) => m)
    .find((m): m is Linear4bit => m instanceof Linear4bit);
  if (layer === undefined) return null;
  return {
    _load_in_4bit: true,
    _load_in_8bit: false,
    bnb_4bit_compute_dtype: layer.computeDtype,
    bnb_4bit_quant_storage: layer.quantStorage,
    bnb_4bit_quant_type: layer.state.quantType,
    bnb_4bit_use_double_quant: layer.state.nested !== null,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: null,
    llm_int8_threshold: 6.0,
    load_in_4bit: true,
    load_in_8bit: false,
    quant_method: "bitsandbytes",
  };
}
