/**
 * The part of the WebAssembly JavaScript API this backend uses. TypeScript declares the
 * API only in its DOM libraries, which this Node-first project does not load, and these
 * few declarations keep the emitted .d.ts files free of DOM types.
 */
export type WasmModule = object;

export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(deltaPages: number): number;
}

export interface WasmGlobal {
  value: number;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}

/** The engine's WebAssembly object, or undefined where there is none. */
export const webAssembly = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
