import { ModuleDict } from "../nn/containers.js";
import { Module } from "../nn/module.js";
import type { Tensor } from "../tensor/tensor.js";

type Callable = Module & { forward(...args: unknown[]): Tensor };

/**
 * PEFT's modules_to_save: the original module stays frozen, each adapter trains its own
 * copy, and the active adapter's copy runs. Saved under the module's own parameter names.
 */
export class ModulesToSaveWrapper extends Module {
  activeAdapter: string | null = null;
  disabled = false;

  constructor(original: Module) {
    super();
    this.registerModule("original_module", original);
    this.registerModule("modules_to_save", new ModuleDict());
  }

  get original(): Module {
    return this.childModule("original_module")!;
  }

  get copies(): ModuleDict {
    return this.childModule("modules_to_save") as ModuleDict;
  }

  addAdapter(name: string): void {
    const copy = this.original.deepCopy();
    copy.requiresGrad_(true);
    this.copies.set(name, copy);
  }

  /** The module that runs now. */
  current(): Module {
    const copy = this.activeAdapter === null ? undefined : this.copies.get(this.activeAdapter);
    return this.disabled || copy === undefined ? this.original : copy;
  }

  forward(...args: unknown[]): Tensor {
    return (this.current() as Callable).forward(...args);
  }
}
