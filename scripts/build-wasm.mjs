// Builds the WebAssembly kernels (csrc/wasm) into src/backend/wasm/*.wasm, which are
// committed: installing peft-ts needs no C toolchain. Needs clang and wasm-ld 19
// (Debian: apt-get install clang-19 lld-19); CLANG overrides the compiler. The output is
// byte-for-byte reproducible (no debug info, no paths, names stripped), and CI checks
// that the committed files equal a fresh build.
import { spawnSync } from "node:child_process";
import { chmodSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const clang = process.env.CLANG ?? "clang-19";

const common = [
  "--target=wasm32",
  "-O3",
  "-std=c11",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-nostdlib",
  "-ffreestanding",
  "-msimd128",
  // Threads: atomics for the chunk counters and a shared memory; bulk memory turns any
  // zero-fill or copy loop clang recognises into memory.fill/copy instead of libc calls.
  "-matomics",
  "-mbulk-memory",
  "-g0",
  `-ffile-prefix-map=${root}=.`,
  "-Wl,--no-entry",
  "-Wl,--import-memory,--shared-memory",
  "-Wl,--initial-memory=131072,--max-memory=4294967296",
  "-Wl,-z,stack-size=65536",
  // Each thread's instance gets its own C stack through the exported stack pointer.
  "-Wl,--export=__stack_pointer,--export=__heap_base",
  "-Wl,--strip-all",
  // The portable kernels mark their parallel loops for OpenMP, which wasm32 lacks: they
  // run on the calling thread here.
  "-Wno-unknown-pragmas",
];

// The GEMM, the portable kernels and their entry points, in a fixed order (reproducible).
const kernels = readdirSync(`${root}csrc/kernels`)
  .filter((f) => f.endsWith(".c"))
  .sort()
  .map((f) => `csrc/kernels/${f}`);
const sources = ["csrc/wasm/gemm.c", "csrc/wasm/kernels.c", ...kernels];

const builds = [
  { out: "kernels-simd.wasm", flags: [] },
  { out: "kernels-relaxed.wasm", flags: ["-mrelaxed-simd", "-DPEFT_RELAXED"] },
];

for (const { out, flags } of builds) {
  const args = [...common, ...flags, "-o", `src/backend/wasm/${out}`, ...sources];
  const r = spawnSync(clang, args, { cwd: root, stdio: "inherit" });
  if (r.error) {
    console.error(
      `build-wasm: cannot run ${clang} (${r.error.message}); install clang-19 and lld-19`,
    );
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
  // The linker marks its output executable; a data file is committed as 0644.
  chmodSync(`${root}src/backend/wasm/${out}`, 0o644);
  console.log(`build-wasm: src/backend/wasm/${out}`);
}
