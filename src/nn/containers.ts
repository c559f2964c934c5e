import type { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

/** Children by name (torch.nn.ModuleDict); PEFT keeps one child per adapter in these. */
export class ModuleDict<M extends Module = Module> extends Module {
  set(name: string, m: M): M {
    this.setModule(name, m);
    return m;
  }

  get(name: string): M | undefined {
    return this.childModule(name) as M | undefined;
  }

  has(name: string): boolean {
    return this.childModule(name) !== undefined;
  }

  keys(): string[] {
    return this.namedChildren().map(([n]) => n);
  }

  delete(name: string): void {
    this.removeModule(name);
  }
}

/** Tensors by name (torch.nn.ParameterDict), as parameters of this module. */
export class ParameterDict extends Module {
  set(name: string, t: Tensor): Tensor {
    this.registerParameter(name, t);
    return t;
  }

  get(name: string): Tensor | undefined {
    return this.optionalTensor(name) ?? undefined;
  }

  has(name: string): boolean {
    return this.optionalTensor(name) !== null;
  }

  delete(name: string): void {
    this.removeParameter(name);
  }
}

/** Tensors by name kept as buffers (PEFT's BufferDict), e.g. VeRA's shared projections. */
export class BufferDict extends Module {
  set(name: string, t: Tensor): Tensor {
    this.registerBuffer(name, t);
    return t;
  }

  get(name: string): Tensor | undefined {
    return this.optionalTensor(name) ?? undefined;
  }
}
