import type { Backend } from "../../src/backend/backend.js";
import { addon } from "../../src/backend/native/addon.js";
import { makeNative } from "../../src/backend/native/index.js";

/**
 * The native backend with every output starting as NaN bit patterns (0xff bytes), as the
 * native host's unzeroed memory may: a kernel that leaves any element unwritten fails.
 * Null where the addon is not built.
 */
export const poisonedNative: Backend | null =
  addon === null
    ? null
    : makeNative({ ...addon, allocateUninitialized: (n) => new Uint8Array(n).fill(0xff).buffer });
