import type { FloatDType } from "../backend/dtype.js";
import { FileFormatError, ShapeError, ValueError } from "../errors.js";
import type { Checkpoint } from "../io/checkpoint.js";
import { Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import { cast } from "../tensor/ops/elementwise.js";
import { fmt } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { dequantizeAbsmax, type QuantState, quantize4bit } from "./blockwise.js";
import type { QuantType } from "./codes.js";
import { dequantizedWeight, linear4bit } from "./matmul4bit.js";

/**
 * The dtype the packed bytes are stored as (bitsandbytes' quant_storage): the same bytes,
 * viewed as [bytes / itemsize, 1] elements of that dtype in checkpoints.
 */
export type QuantStorage = "uint8" | "bfloat16" | "float16" | "float32";
export const QUANT_STORAGES: readonly QuantStorage[] = ["uint8", "bfloat16", "float16", "float32"];

export interface Quant4bitOptions {
  quantType?: QuantType;
  blocksize?: number;
  doubleQuant?: boolean;
  /** The dtype the matmul runs in (bitsandbytes' bnb_4bit_compute_dtype). Default float32. */
  computeDtype?: FloatDType;
  /** How checkpoints store the packed bytes (bnb_4bit_quant_storage). Default uint8. */
  quantStorage?: QuantStorage;
}

/**
 * A linear layer whose weight is stored as packed 4-bit codes plus a quant state
 * (bitsandbytes' Linear4bit). `inFeatures`/`outFeatures` and `weightShape` are always the
 * real [out, in] shape, never the packed one. The forward pass dequantises into the
 * compute dtype, multiplies, and returns the input's dtype.
 */
export class Linear4bit extends Module {
  packed: Uint8Array;
  state: QuantState;
  readonly computeDtype: FloatDType;
  readonly quantStorage: QuantStorage;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    packed: Uint8Array,
    state: QuantState,
    options: { bias?: Tensor | null; computeDtype?: FloatDType; quantStorage?: QuantStorage } = {},
  ) {
    super();
    if (
      state.shape.length !== 2 ||
      state.shape[0] !== outFeatures ||
      state.shape[1] !== inFeatures
    ) {
      throw new ShapeError(
        "Linear4bit",
        `quant state shape ${fmt(state.shape)} does not match the layer's [${outFeatures}, ${inFeatures}]`,
      );
    }
    if (packed.length !== Math.ceil((outFeatures * inFeatures) / 2)) {
      throw new ShapeError(
        "Linear4bit",
        `${packed.length} packed bytes cannot hold a [${outFeatures}, ${inFeatures}] weight (expected ${Math.ceil((outFeatures * inFeatures) / 2)})`,
      );
    }
    this.packed = packed;
    this.state = state;
    this.computeDtype = options.computeDtype ?? "float32";
    this.quantStorage = options.quantStorage ?? "uint8";
    if (!QUANT_STORAGES.includes(this.quantStorage))
      throw new ValueError(
        `Linear4bit: quantStorage must be one of ${QUANT_STORAGES.join(", ")}, got ${JSON.stringify(this.quantStorage)}`,
      );
    this.registerParameter("bias", options.bias ?? null);
  }

  /** Quantises a dense [out, in] weight. */
  static fromWeight(
    weight: Tensor,
    bias: Tensor | null,
    options: Quant4bitOptions = {},
  ): Linear4bit {
    const [out, inF] = weight.shape;
    const { packed, state } = quantize4bit(weight, [out, inF], {
      ...options,
      dtype: weight.dtype,
    });
    return new Linear4bit(inF, out, packed, state, {
      bias: bias?.detach() ?? null,
      computeDtype: options.computeDtype,
      quantStorage: options.quantStorage,
    });
  }

  get weightShape(): [number, number] {
    return [this.outFeatures, this.inFeatures];
  }

  get bias(): Tensor | null {
    return this.optionalTensor("bias");
  }

  /** The dequantised weight in the compute dtype: a transient tensor, not a parameter (merging, DoRA). */
  get weight(): Tensor {
    return dequantizedWeight(this.packed, this.state, this.computeDtype);
  }

  /** Requantises new weight values (merging an adapter into a 4-bit layer rounds again). */
  replaceWeight(values: Tensor): void {
    const { packed, state } = quantize4bit(values, this.weightShape, {
      quantType: this.state.quantType,
      blocksize: this.state.blocksize,
      doubleQuant: this.state.nested !== null,
      dtype: this.state.dtype,
    });
    this.packed = packed;
    this.state = state;
  }

  forward(x: Tensor): Tensor {
    return cast(
      linear4bit(x, this.packed, this.state, this.computeDtype, this.bias, this.path),
      x.dtype,
    );
  }

  /** A dense Linear with the dequantised weight in `dtype` (for a 16-bit model after QLoRA). */
  toLinear(dtype: FloatDType): Linear {
    const dense = new Linear(this.inFeatures, this.outFeatures, {
      bias: this.bias !== null,
      init: "zeros",
      dtype,
    });
    dense.setParameter("weight", dequantizedWeight(this.packed, this.state, dtype).detach());
    if (this.bias !== null) dense.setParameter("bias", this.bias.detach().to(dtype));
    return dense;
  }

  /** Bytes held by the quantised weight (codes and statistics). */
  get quantizedBytes(): number {
    const n = this.state.nested;
    return (
      this.packed.byteLength +
      (n === null ? this.state.absmax.byteLength : n.codes.byteLength + n.absmax.byteLength)
    );
  }
}

/** Reads `<prefix>.weight` and its quant-state tensors in bitsandbytes' serialised layout. */
export function readQuantizedWeight(
  checkpoint: Checkpoint,
  prefix: string,
): { packed: Uint8Array; state: QuantState; storage: QuantStorage; keys: string[] } {
  const key = (s: string) => `${prefix}.weight${s}`;
  const blobKey = ["nf4", "fp4"]
    .map((t) => key(`.quant_state.bitsandbytes__${t}`))
    .find((k) => checkpoint.has(k));
  const where = `${checkpoint.dir}: ${prefix}`;
  if (blobKey === undefined)
    throw new FileFormatError(
      where,
      "a 4-bit weight needs weight.quant_state.bitsandbytes__nf4 (or __fp4)",
    );
  let blob: Record<string, unknown>;
  try {
    blob = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(checkpoint.load(blobKey).data as Uint8Array),
    );
  } catch (e) {
    throw new FileFormatError(where, `the quant state JSON is corrupt (${(e as Error).message})`);
  }
  const quantType = blob.quant_type;
  if (quantType !== "nf4" && quantType !== "fp4")
    throw new FileFormatError(
      where,
      `unknown quant_type ${JSON.stringify(quantType)}: expected "nf4" or "fp4"`,
    );
  const blocksize = blob.blocksize;
  const shape = blob.shape;
  if (
    !Number.isInteger(blocksize) ||
    !Array.isArray(shape) ||
    shape.length !== 2 ||
    !shape.every(Number.isInteger)
  ) {
    throw new FileFormatError(
      where,
      `the quant state needs an integer blocksize and a 2-D shape, found ${JSON.stringify({ blocksize, shape })}`,
    );
  }
  const numel = shape[0] * shape[1];
  const weight = checkpoint.load(key(""));
  const storage = weight.dtype as QuantStorage;
  if (!QUANT_STORAGES.includes(storage))
    throw new FileFormatError(
      where,
      `a 4-bit weight is stored as ${QUANT_STORAGES.join(", ")}, found ${weight.dtype}`,
    );
  // bitsandbytes views the packed bytes as the storage dtype; the bytes are what count.
  const data = weight.data as Uint8Array | Uint16Array | Float32Array;
  const packed = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (packed.length !== Math.ceil(numel / 2)) {
    const elements = storage === "uint8" ? "" : ` (${weight.size} ${storage} elements)`;
    throw new FileFormatError(
      where,
      `quant state shape [${shape.join(", ")}] needs ${Math.ceil(numel / 2)} packed bytes, the weight holds ${packed.length} bytes${elements}`,
    );
  }
  const blocks = Math.ceil(numel / (blocksize as number));
  const code = checkpoint.load(key(".quant_map")).toFloat32Array();
  const absmaxT = checkpoint.load(key(".absmax"));
  const keys = [key(""), blobKey, key(".quant_map"), key(".absmax")];
  if (absmaxT.size !== blocks)
    throw new FileFormatError(
      where,
      `blocksize ${blocksize} over ${numel} values gives ${blocks} blocks, but absmax has ${absmaxT.size}`,
    );
  let absmax: Float32Array;
  let nested: QuantState["nested"] = null;
  if (absmaxT.dtype === "uint8") {
    const nestedBlocksize = blob.nested_blocksize;
    const offset = blob.nested_offset;
    if (!Number.isInteger(nestedBlocksize) || typeof offset !== "number")
      throw new FileFormatError(
        where,
        "a double-quantised absmax needs nested_blocksize and nested_offset in the quant state",
      );
    nested = {
      codes: absmaxT.data as Uint8Array,
      absmax: checkpoint.load(key(".nested_absmax")).toFloat32Array(),
      map: checkpoint.load(key(".nested_quant_map")).toFloat32Array(),
      offset,
      blocksize: nestedBlocksize as number,
    };
    keys.push(key(".nested_absmax"), key(".nested_quant_map"));
    absmax = dequantizeAbsmax(nested);
  } else {
    absmax = absmaxT.toFloat32Array();
  }
  const state: QuantState = {
    quantType,
    blocksize: blocksize as number,
    shape,
    dtype: String(blob.dtype ?? "float32"),
    code,
    absmax,
    nested,
  };
  return { packed, state, storage, keys };
}
