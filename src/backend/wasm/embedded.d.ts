/** The .wasm files beside this module, base64-encoded by name (written at build time). */
export declare const EMBEDDED: Readonly<Record<string, string>>;
