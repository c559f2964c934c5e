import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Generator } from "../tensor/random.js";
import { sha256 } from "./sha256.js";

describe("sha256", () => {
  it("gives FIPS 180-4's digests of its examples", () => {
    const text = (s: string) => sha256(new TextEncoder().encode(s));
    expect(text("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(text("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
  });

  it("equals Node's for every length across the padding boundaries, and for 3 MB", () => {
    const g = new Generator(11);
    const random = (n: number) => Uint8Array.from({ length: n }, () => g.nextUint32() & 0xff);
    for (const n of [...Array.from({ length: 200 }, (_, i) => i), 1000, 4095, 4096, 3 << 20]) {
      const bytes = random(n);
      expect(sha256(bytes)).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
  });
});
