import { ValueError } from "../../../errors.js";
import { ParameterDict } from "../../../nn/containers.js";
import { eye, ones, rand, randn, zeros } from "../../../tensor/creation.js";
import { add, cast, div, mul, sub } from "../../../tensor/ops/elementwise.js";
import { slice, transpose } from "../../../tensor/ops/layout.js";
import { matmul } from "../../../tensor/ops/matmul.js";
import { reshape } from "../../../tensor/ops/view.js";
import { Tensor } from "../../../tensor/tensor.js";
import { AdapterLayer, type AdapterSettings, type BaseLayer } from "../adapter-layer.js";
import { blockDiagonal, cayley } from "../oft/cayley.js";

export interface BOFTSettings extends AdapterSettings {
  blockSize: number;
  blockNum: number;
  factors: number;
  dropout: number;
}

/**
 * PEFT's butterfly permutation of factor i: the features in groups of b·2^i, each group
 * cut into chunks of b/2, chunks of even index first, then the odd ones. Factor 0 (and a
 * single factor) is the identity.
 */
export function butterflyPermutation(
  n: number,
  blockNum: number,
  blockSize: number,
  factor: number,
  factors: number,
): number[] {
  const identity = Array.from({ length: n }, (_, i) => i);
  if (factors === 1) return identity;
  const groups = blockNum / 2 ** factor;
  const r = blockSize / 2;
  if (groups * r * 2 > n) throw new ValueError("BOFT: invalid number of blocks for the butterfly");
  const group = n / groups;
  const chunks = group / r;
  const order = [
    ...Array.from({ length: Math.ceil(chunks / 2) }, (_, i) => 2 * i),
    ...Array.from({ length: Math.floor(chunks / 2) }, (_, i) => 2 * i + 1),
  ];
  const within = order.flatMap((c) => Array.from({ length: r }, (_, k) => c * r + k));
  return identity.map((i) => Math.floor(i / group) * group + within[i % group]);
}

/** P with P[k, perm[k]] = 1. */
function permutationMatrix(perm: number[], dtype: Tensor["dtype"]): Tensor {
  const n = perm.length;
  const values = new Float64Array(n * n);
  perm.forEach((p, k) => {
    values[k * n + p] = 1;
  });
  return new Tensor(values, [n, n], "float64").to(dtype);
}

/**
 * BOFT (PEFT 0.13.2): boft_R [N, D, b, b] Cayley blocks, boft_s [out, 1]. Factor i is
 * M_i = P_i·block_diag(Q_i)·P_iᵀ and R = M_{N-1}···M_0 [in, in]; the layer computes
 * y = ((x·R)·Wᵀ) ⊙ s + bias, i.e. W' = diag(s)·W·Rᵀ, which is also the merged weight.
 */
export class BOFTLayer extends AdapterLayer<BOFTSettings> {
  protected readonly adapterLayerNames = ["boft_R", "boft_s"] as const;
  private readonly permutations = new Map<string, Tensor[]>();

  constructor(base: BaseLayer) {
    super(base);
    this.registerModule("boft_R", new ParameterDict());
    this.registerModule("boft_s", new ParameterDict());
  }

  private adapterTensor(dict: "boft_R" | "boft_s", name: string): Tensor {
    return (this.childModule(dict) as ParameterDict).get(name)!;
  }

  addAdapter(
    name: string,
    s: Omit<BOFTSettings, "blockSize" | "blockNum">,
    block: { size: number; num: number },
    init: boolean,
  ): void {
    const n = this.inFeatures;
    const blockNum = block.num !== 0 ? block.num : n / block.size;
    const blockSize = block.size !== 0 ? block.size : n / block.num;
    const where = `${this.path || "layer"} (in_features ${n})`;
    if (!Number.isInteger(blockNum) || !Number.isInteger(blockSize) || blockNum * blockSize !== n)
      throw new ValueError(
        `BOFT: ${where} is not divisible into ${block.num || `blocks of ${block.size}`}`,
      );
    if (s.factors > 1) {
      if (blockNum % 2 !== 0 || blockSize % 2 !== 0)
        throw new ValueError(
          `BOFT: with butterfly factors the block number (${blockNum}) and size (${blockSize}) must be even (${where})`,
        );
      if (n % (blockSize * 2 ** (s.factors - 1)) !== 0 || blockNum % 2 ** (s.factors - 1) !== 0)
        throw new ValueError(
          `BOFT: ${s.factors} butterfly factors do not fit ${blockNum} blocks of ${blockSize} (${where})`,
        );
    }
    const d = { dtype: s.dtype };
    const shape = [s.factors, blockNum, blockSize, blockSize];
    const R = init ? zeros(shape, d) : randn(shape, { ...d, std: 0.1 });
    const scale = init
      ? ones([this.outFeatures, 1], d)
      : randn([this.outFeatures, 1], { ...d, std: 0.1, mean: 1 });
    this.register(
      name,
      { ...s, blockSize, blockNum },
      { boft_R: R.requiresGrad_(), boft_s: scale.requiresGrad_() },
    );
    this.permutations.set(
      name,
      Array.from({ length: s.factors }, (_, i) =>
        permutationMatrix(butterflyPermutation(n, blockNum, blockSize, i, s.factors), s.dtype),
      ),
    );
  }

  override deleteAdapter(name: string): void {
    super.deleteAdapter(name);
    this.permutations.delete(name);
  }

  /** PEFT's multiplicative dropout: in one random factor, a share of the blocks becomes I. */
  private dropBlocks(name: string, q: Tensor): Tensor {
    const s = this.settingsOf(name);
    const dropped = Math.floor(s.dropout * s.blockNum);
    if (!this.training || dropped === 0) return q;
    const factor = Math.min(s.factors - 1, Math.floor((rand([1]).item() as number) * s.factors));
    const order = [...rand([s.blockNum]).toFloat32Array()]
      .map((v, i) => [v, i])
      .sort((a, b) => a[0] - b[0]);
    const mask = new Float64Array(s.factors * s.blockNum);
    for (const [, i] of order.slice(0, dropped)) mask[factor * s.blockNum + i] = 1;
    const m = new Tensor(mask, [s.factors, s.blockNum, 1, 1], "float64").to(q.dtype);
    const I = eye(s.blockSize, { dtype: q.dtype as never });
    return add(mul(sub(1, m), q), mul(m, I));
  }

  /** R [in, in] in the adapter's dtype. */
  rotation(name: string): Tensor {
    const s = this.settingsOf(name);
    const blocks = this.adapterTensor("boft_R", name);
    const q = this.dropBlocks(
      name,
      reshape(cayley(reshape(blocks, [-1, s.blockSize, s.blockSize])), blocks.shape),
    );
    const perms = this.permutations.get(name)!;
    let R: Tensor | null = null;
    for (let i = 0; i < s.factors; i++) {
      const bd = blockDiagonal(
        reshape(slice(q, 0, i, i + 1), [s.blockNum, s.blockSize, s.blockSize]),
        s.blockNum,
      );
      const M = matmul(perms[i], matmul(bd, transpose(perms[i])));
      R = R === null ? M : matmul(M, R);
    }
    return R!;
  }

  private scales(name: string): Tensor {
    return reshape(this.adapterTensor("boft_s", name), [-1]);
  }

  protected override transformInput(name: string, x: Tensor): Tensor {
    return cast(matmul(this.adapterInput(name, x), this.rotation(name)), x.dtype);
  }

  protected transformOutput(name: string, _x: Tensor, result: Tensor): Tensor {
    return this.withoutBias(name, result, (y) => mul(y, this.scales(name)));
  }

  // BOFT wraps linear layers only, whose weight is stored [out, in].
  protected mergedWeight(name: string, w32: Tensor): Tensor {
    const R = cast(this.rotation(name), "float32");
    return mul(matmul(w32, transpose(R)), reshape(cast(this.scales(name), "float32"), [-1, 1]));
  }

  protected unmergedWeight(name: string, w32: Tensor): Tensor {
    // R is orthogonal, so W = diag(1/s)·W'·R.
    const R = cast(this.rotation(name), "float32");
    return div(matmul(w32, R), reshape(cast(this.scales(name), "float32"), [-1, 1]));
  }
}
