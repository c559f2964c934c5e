/**
 * The 4-bit code tables of bitsandbytes and its signed 8-bit dynamic map, as float32.
 */

/** NF4: quantiles of a normal distribution, normalised to [-1, 1] (bitsandbytes' get_4bit_type("nf4")). */
export const NF4_CODE = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
]);

/** FP4 (1 sign, 2 exponent, 1 mantissa bits) in bit-pattern order; bit 3 is the sign, and both zeros are +0. */
export const FP4_CODE = Float32Array.from(
  [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => v / 12),
);

export type QuantType = "nf4" | "fp4";

export function codeFor(type: QuantType): Float32Array {
  return type === "nf4" ? NF4_CODE : FP4_CODE;
}

/**
 * bitsandbytes' signed 8-bit dynamic map (create_dynamic_map(signed=True)), used for the
 * 8-bit absmax of double quantisation: for each of 7 decades the midpoints of an even
 * grid on [0.1, 1] (2^i + 1 points, torch.linspace in float32) times 10^(i-6), both signs,
 * plus 0 and 1, sorted. Its values depend on PyTorch's vectorised linspace rounding, so
 * they are kept here as the float32 bit patterns PyTorch produces (checked against
 * bitsandbytes' own map in the tests).
 */
const DYNAMIC_MAP_BITS = `
  bf7e3333 bf7a9999 bf770000 bf736666 bf6fcccc bf6c3333 bf68999a bf650000
  bf616666 bf5dcccc bf5a3333 bf569999 bf530000 bf4f6666 bf4bcccc bf483333
  bf44999a bf410000 bf3d6667 bf39cccd bf363334 bf32999a bf2f0000 bf2b6667
  bf27cccd bf243333 bf20999a bf1d0000 bf196666 bf15cccd bf123334 bf0e999a
  bf0b0000 bf076666 bf03cccd bf003333 bef93334 bef20000 beeacccc bee3999a
  bedc6666 bed53332 bece0000 bec6cccc bebf999a beb86666 beb13332 beaa0000
  bea2cccc be9b999a be946666 be8d3334 be860000 be7d999a be6f3334 be60cccd
  be526666 be440000 be359999 be273333 be18cccd be0a6666 bdf80000 bddb3334
  bdc9eb85 bdc428f5 bdbe6667 bdb8a3d7 bdb2e148 bdad1eb8 bda75c28 bda1999a
  bd9bd70a bd96147b bd9051eb bd8a8f5d bd84cccd bd7e147a bd728f5d bd670a3d
  bd5b851f bd500000 bd447ae1 bd38f5c3 bd2d70a3 bd21eb85 bd166667 bd0ae147
  bcfeb852 bce7ae13 bcd0a3d7 bcb9999a bca28f5c bc8b851f bc68f5c3 bc3ae148
  bc1f3b64 bc160418 bc0ccccd bc039581 bbf4bc6a bbe24dd3 bbcfdf3b bbbd70a4
  bbab020d bb989374 bb8624dd bb676c8a bb428f5c bb1db22d baf1a9fc baa7ef9d
  ba7765ff ba59e83e ba3c6a80 ba1eecc1 ba016f01 b9c7e283 b98ce705 b923d70b
  b8ba1f4b b88aefb3 b8378034 b7b24206 b70205ff b65a1a94 b513a3b7 00000000
  3513a3b7 365a1a94 370205ff 37b24206 38378034 388aefb3 38ba1f4b 3923d70b
  398ce705 39c7e283 3a016f01 3a1eecc1 3a3c6a80 3a59e83e 3a7765ff 3aa7ef9d
  3af1a9fc 3b1db22d 3b428f5c 3b676c8a 3b8624dd 3b989374 3bab020d 3bbd70a4
  3bcfdf3b 3be24dd3 3bf4bc6a 3c039581 3c0ccccd 3c160418 3c1f3b64 3c3ae148
  3c68f5c3 3c8b851f 3ca28f5c 3cb9999a 3cd0a3d7 3ce7ae13 3cfeb852 3d0ae147
  3d166667 3d21eb85 3d2d70a3 3d38f5c3 3d447ae1 3d500000 3d5b851f 3d670a3d
  3d728f5d 3d7e147a 3d84cccd 3d8a8f5d 3d9051eb 3d96147b 3d9bd70a 3da1999a
  3da75c28 3dad1eb8 3db2e148 3db8a3d7 3dbe6667 3dc428f5 3dc9eb85 3ddb3334
  3df80000 3e0a6666 3e18cccd 3e273333 3e359999 3e440000 3e526666 3e60cccd
  3e6f3334 3e7d999a 3e860000 3e8d3334 3e946666 3e9b999a 3ea2cccc 3eaa0000
  3eb13332 3eb86666 3ebf999a 3ec6cccc 3ece0000 3ed53332 3edc6666 3ee3999a
  3eeacccc 3ef20000 3ef93334 3f003333 3f03cccd 3f076666 3f0b0000 3f0e999a
  3f123334 3f15cccd 3f196666 3f1d0000 3f20999a 3f243333 3f27cccd 3f2b6667
  3f2f0000 3f32999a 3f363334 3f39cccd 3f3d6667 3f410000 3f44999a 3f483333
  3f4bcccc 3f4f6666 3f530000 3f569999 3f5a3333 3f5dcccc 3f616666 3f650000
  3f68999a 3f6c3333 3f6fcccc 3f736666 3f770000 3f7a9999 3f7e3333 3f800000
`;

export const DYNAMIC_MAP: Float32Array = new Float32Array(
  Uint32Array.from(DYNAMIC_MAP_BITS.trim().split(/\s+/), (h) => Number.parseInt(h, 16)).buffer,
);
