import { afterEach, describe, expect, it } from "vitest";
import { backendInfo, startBackend } from "./info.js";
import { availableBackends, getBackend, setBackend } from "./registry.js";

describe("startBackend", () => {
  const previous = getBackend().name;
  afterEach(() => {
    setBackend(previous);
  });

  it.each(availableBackends())(
    "on %s, resolves once every thread takes part in products",
    async (name) => {
      setBackend(name);
      const info = await startBackend();
      expect(info.backend).toBe(name);
      expect(info.threadsJoined).toBe(name === "reference" ? 1 : info.threads);
      expect(backendInfo().threadsJoined).toBe(info.threadsJoined);
    },
  );
});
