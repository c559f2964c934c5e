import type { FloatDType } from "../../../backend/dtype.js";
import { Embedding, Linear, ModuleList } from "../../../nn/layers.js";
import { Module } from "../../../nn/module.js";
import { randn } from "../../../tensor/creation.js";
import { relu, tanh } from "../../../tensor/ops/elementwise.js";
import type { Tensor } from "../../../tensor/tensor.js";

/** A reparameterisation of the virtual tokens: Linear layers with an activation between them. */
export interface EncoderHead {
  /** PEFT's module name: "mlp_head" (P-tuning) or "transform" (prefix projection). */
  name: string;
  /** Layer widths: [in, hidden, ..., out]. */
  widths: number[];
  activation: "relu" | "tanh";
}

/**
 * The virtual tokens of one prompt-learning adapter (PEFT's prompt encoder): a table
 * [V, width] (N(0, 1), nn.Embedding's init), optionally passed through an MLP head while
 * training. PEFT saves the values (`prompt_embeddings`), not the head, so a loaded adapter
 * is a table of the values.
 */
export class VirtualTokenEncoder extends Module {
  private readonly head: EncoderHead | null;

  constructor(tokens: number, width: number, dtype: FloatDType, head: EncoderHead | null = null) {
    super();
    const table = new Embedding(tokens, width, { dtype, init: "zeros" });
    table.setParameter("weight", randn([tokens, width], { dtype }).requiresGrad_());
    this.registerModule("embedding", table);
    this.head = head;
    if (head !== null) {
      const layers = head.widths.slice(1).map((w, i) => new Linear(head.widths[i], w, { dtype }));
      this.registerModule(head.name, new ModuleList(layers));
    }
  }

  get tokens(): number {
    return (this.childModule("embedding") as Embedding).numEmbeddings;
  }

  get table(): Tensor {
    return (this.childModule("embedding") as Embedding).weight;
  }

  /** The virtual tokens' values [V, out]: the table, or the head applied to it. */
  values(): Tensor {
    if (this.head === null) return this.table;
    const act = this.head.activation === "relu" ? relu : tanh;
    const layers = (this.childModule(this.head.name) as ModuleList<Linear>).items;
    let h = this.table;
    layers.forEach((l, i) => {
      h = l.forward(h);
      if (i < layers.length - 1) h = act(h);
    });
    return h;
  }

  get hasHead(): boolean {
    return this.head !== null;
  }
}
