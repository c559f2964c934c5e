import { ValueError } from "../errors.js";

/**
 * The one pseudo-random generator of peft-ts: MT19937 (32-bit Mersenne Twister), seeded
 * exactly as PyTorch's CPU generator (`torch.Generator().manual_seed(seed)` uses the low
 * 32 bits of the seed). Draws are converted to floats the way PyTorch's CPU kernels do,
 * so `uniform`/`rand` in float32 and float64 reproduce torch's `uniform_`/`rand` bit for
 * bit, on every platform. Its whole state can be saved and restored (checkpoints).
 */
export class Generator {
  private readonly mt = new Uint32Array(624);
  private index = 624;
  /** Box-Muller makes normals in pairs; the spare one waits here, as in PyTorch. */
  private spareNormal: number | null = null;

  constructor(seed: number | bigint = 5489) {
    this.manualSeed(seed);
  }

  manualSeed(seed: number | bigint): this {
    if (typeof seed === "number" && (!Number.isInteger(seed) || !Number.isFinite(seed))) {
      throw new ValueError(`manualSeed: expected an integer seed, got ${seed}`);
    }
    const s = Number(BigInt.asUintN(32, BigInt(seed)));
    const mt = this.mt;
    mt[0] = s;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev + i, modulo 2^32, without losing bits to float rounding.
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.index = 624;
    this.spareNormal = null;
    return this;
  }

  /** The next 32-bit output. */
  nextUint32(): number {
    if (this.index >= 624) this.twist();
    let y = this.mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform in [0, 1) with 24 random bits (PyTorch's float path). */
  nextFloat24(): number {
    return (this.nextUint32() & 0xffffff) * 2 ** -24;
  }

  /** Uniform in [0, 1) with 53 random bits from two draws, high word first (PyTorch's double path). */
  nextFloat53(): number {
    const hi = this.nextUint32();
    const lo = this.nextUint32();
    return ((hi & 0x1fffff) * 2 ** 32 + lo) * 2 ** -53;
  }

  /** A standard normal from the double-precision Box-Muller PyTorch uses for small tensors. */
  nextNormal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    const u1 = this.nextFloat53();
    const u2 = this.nextFloat53();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.spareNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** A snapshot of the whole state, for checkpoints. */
  getState(): GeneratorState {
    return { mt: Array.from(this.mt), index: this.index, spareNormal: this.spareNormal };
  }

  setState(state: GeneratorState): this {
    if (
      !Array.isArray(state?.mt) ||
      state.mt.length !== 624 ||
      !(state.index >= 0 && state.index <= 624)
    ) {
      throw new ValueError(
        "Generator.setState: expected a state from getState() (624 words and an index)",
      );
    }
    this.mt.set(state.mt);
    this.index = state.index;
    this.spareNormal = state.spareNormal ?? null;
    return this;
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < 624; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
      let v = mt[(i + 397) % 624] ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.index = 0;
  }
}

export interface GeneratorState {
  mt: number[];
  index: number;
  spareNormal: number | null;
}

/** The generator used when an op is given neither a seed nor a generator. */
export const defaultGenerator = new Generator();

/** Reseeds the default generator, like torch.manual_seed. */
export function manualSeed(seed: number | bigint): void {
  defaultGenerator.manualSeed(seed);
}

export interface RandomOptions {
  /** A fresh generator seeded with this, so the call is reproducible on its own. */
  seed?: number | bigint;
  generator?: Generator;
}

export function generatorFor(options: RandomOptions | undefined): Generator {
  if (options?.seed !== undefined) return new Generator(options.seed);
  return options?.generator ?? defaultGenerator;
}
