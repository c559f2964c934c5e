export type { Backend } from "./backend/backend.js";
export { availableBackends, getBackend, registerBackend, setBackend } from "./backend/registry.js";
export * from "./errors.js";
export * from "./tensor/index.js";
