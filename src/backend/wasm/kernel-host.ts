import { BackendError } from "../../errors.js";
import type { KernelHost } from "../c-kernels/host.js";
import type { Storage } from "../dtype.js";
import type { WasmGemm } from "./gemm.js";
import type { ModuleExports } from "./module.js";

/** How a call uses an array: read, written, or added into; or bytes of workspace. */
type Arg = readonly [Storage | null, "in" | "out" | "inout"] | readonly [number, "scratch"];

const bytesOf = (a: Storage) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Runs one kernel of the module on copies of its arrays: each is copied into the module's
 * memory (outputs only allocated), `run` gets their addresses (0 for null), and what the
 * kernel wrote is copied back into the caller's arrays.
 */
function invoke(
  engine: WasmGemm,
  name: string,
  args: readonly Arg[],
  run: (exports: ModuleExports, at: number[]) => unknown,
): void {
  const { arena, memory, exports } = engine.scratch();
  const at = args.map(([a]) =>
    a === null ? 0 : arena.alloc(typeof a === "number" ? a : a.byteLength),
  );
  // Only now, after any growth, is memory.buffer the whole memory.
  const buffer = memory.buffer;
  args.forEach(([a, role], i) => {
    if (typeof a === "object" && a !== null && (role === "in" || role === "inout")) {
      new Uint8Array(buffer, at[i], a.byteLength).set(bytesOf(a));
    }
  });
  let status: unknown;
  try {
    status = run(exports, at);
  } catch (e) {
    throw new BackendError(`wasm backend: the ${name} kernel trapped: ${(e as Error).message}`);
  }
  if (typeof status === "number" && status !== 0) {
    throw new BackendError(
      `wasm backend: ${name} got a malformed geometry or a target out of range`,
    );
  }
  args.forEach(([a, role], i) => {
    if (typeof a === "object" && a !== null && (role === "out" || role === "inout")) {
      bytesOf(a).set(new Uint8Array(buffer, at[i], a.byteLength));
    }
  });
}

/**
 * The portable C kernels as the wasm module serves them, on the calling thread. `engine`
 * is called on first use, so nothing is compiled before a kernel runs.
 */
export function wasmKernelHost(engine: () => WasmGemm): KernelHost {
  const call = (name: string, args: readonly Arg[], run: Parameters<typeof invoke>[3]) =>
    invoke(engine(), name, args, run);
  return {
    binary(op, dtype, geometry, a, b, out) {
      const args: Arg[] = [
        [geometry, "in"],
        [a, "in"],
        [b, "in"],
        [out, "out"],
      ];
      call("binary", args, (e, p) => e.peft_binary(op, dtype, p[0], p[1], p[2], p[3]));
    },
    cast(from, to, x, y) {
      call(
        "cast",
        [
          [x, "in"],
          [y, "out"],
        ],
        (e, p) => e.peft_cast(from, to, p[0], p[1], x.length),
      );
    },
    silu(dtype, x, y) {
      call(
        "silu",
        [
          [x, "in"],
          [y, "out"],
        ],
        (e, p) => e.peft_silu(dtype, p[0], p[1], x.length),
      );
    },
    siluGrad(dtype, x, dy, dx) {
      const args: Arg[] = [
        [x, "in"],
        [dy, "in"],
        [dx, "out"],
      ];
      call("siluGrad", args, (e, p) => e.peft_silu_grad(dtype, p[0], p[1], p[2], x.length));
    },
    siluMul(dtype, gate, up, y) {
      const args: Arg[] = [
        [gate, "in"],
        [up, "in"],
        [y, "out"],
      ];
      call("siluMul", args, (e, p) => e.peft_silu_mul(dtype, p[0], p[1], p[2], gate.length));
    },
    siluMulGrad(dtype, gate, up, dy, dgate, dup) {
      const args: Arg[] = [
        [gate, "in"],
        [up, "in"],
        [dy, "in"],
        [dgate, "out"],
        [dup, "out"],
      ];
      call("siluMulGrad", args, (e, p) =>
        e.peft_silu_mul_grad(dtype, p[0], p[1], p[2], p[3], p[4], gate.length),
      );
    },
    crossEntropy(dtype, logits, targets, rows, classes, ignoreIndex, loss, lse) {
      const args: Arg[] = [
        [logits, "in"],
        [targets, "in"],
        [loss, "out"],
        [lse, "out"],
      ];
      call("crossEntropy", args, (e, p) =>
        e.peft_cross_entropy(dtype, p[0], p[1], rows, classes, ignoreIndex, p[2], p[3]),
      );
    },
    crossEntropyGrad(dtype, logits, targets, lse, dloss, rows, classes, ignoreIndex, dlogits) {
      const args: Arg[] = [
        [logits, "in"],
        [targets, "in"],
        [lse, "in"],
        [dloss, "in"],
        [dlogits, "out"],
      ];
      call("crossEntropyGrad", args, (e, p) =>
        e.peft_cross_entropy_grad(dtype, p[0], p[1], p[2], p[3], rows, classes, ignoreIndex, p[4]),
      );
    },
    dequantize4bit(dtype, packed, code, absmax, blocksize, start, count, out) {
      if (count === 0) return;
      // Only the bytes and block scales of [start, start + count) travel (the kernel is
      // called block by block on a layer's whole packed weight).
      const end = start + count;
      const window: Arg[] = [
        [packed.subarray(Math.floor(start / 2), Math.ceil(end / 2)), "in"],
        [code, "in"],
        [
          absmax.subarray(Math.floor(start / blocksize), Math.floor((end - 1) / blocksize) + 1),
          "in",
        ],
        [out, "out"],
      ];
      call("dequantize4bit", window, (e, p) =>
        e.peft_dequantize_4bit(dtype, p[0], p[1], p[2], blocksize, start, count, p[3]),
      );
    },
    norm(rms, dtype, x, w, b, rows, n, eps, y, mean, rstd) {
      const args: Arg[] = [
        [x, "in"],
        [w, "in"],
        [b, "in"],
        [y, "out"],
        [mean, "out"],
        [rstd, "out"],
      ];
      call("norm", args, (e, p) =>
        e.peft_norm(rms ? 1 : 0, dtype, p[0], p[1], p[2], rows, n, eps, p[3], p[4], p[5]),
      );
    },
    normGrad(rms, dtype, x, w, mean, rstd, dy, rows, n, dx, dw, db) {
      const workspace = engine().scratch().exports.peft_norm_grad_workspace(rows, n);
      const args: Arg[] = [
        [x, "in"],
        [w, "in"],
        [mean, "in"],
        [rstd, "in"],
        [dy, "in"],
        [dx, "out"],
        [dw, "inout"],
        [db, "inout"],
        [workspace, "scratch"],
      ];
      call("normGrad", args, (e, p) =>
        e.peft_norm_grad(
          rms ? 1 : 0,
          dtype,
          p[0],
          p[1],
          p[2],
          p[3],
          p[4],
          rows,
          n,
          p[5],
          p[6],
          p[7],
          p[8],
        ),
      );
    },
    rope(dtype, x, cos, sin, batch, heads, seq, dim, cosBatch, inverse, y) {
      const args: Arg[] = [
        [x, "in"],
        [cos, "in"],
        [sin, "in"],
        [y, "out"],
      ];
      call("rope", args, (e, p) =>
        e.peft_rope(
          dtype,
          p[0],
          p[1],
          p[2],
          batch,
          heads,
          seq,
          dim,
          cosBatch,
          inverse ? 1 : 0,
          p[3],
        ),
      );
    },
    attention(dtype, q, k, v, geometry, mask, out, lse) {
      const [T, S, D] = [geometry[3], geometry[4], geometry[5]];
      const workspace = engine().scratch().exports.peft_attention_workspace(T, S, D, 0);
      const args: Arg[] = [
        [q, "in"],
        [k, "in"],
        [v, "in"],
        [geometry, "in"],
        [mask, "in"],
        [out, "out"],
        [lse, "out"],
        [workspace, "scratch"],
      ];
      call("attention", args, (e, p) =>
        e.peft_attention(dtype, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]),
      );
    },
    attentionGrad(dtype, q, k, v, geometry, mask, out, dout, dq, dk, dv) {
      const [T, S, D] = [geometry[3], geometry[4], geometry[5]];
      const workspace = engine().scratch().exports.peft_attention_workspace(T, S, D, 1);
      const args: Arg[] = [
        [q, "in"],
        [k, "in"],
        [v, "in"],
        [geometry, "in"],
        [mask, "in"],
        [out, "in"],
        [dout, "in"],
        [dq, "out"],
        [dk, "out"],
        [dv, "out"],
        [workspace, "scratch"],
      ];
      call("attentionGrad", args, (e, p) =>
        e.peft_attention_grad(
          dtype,
          p[0],
          p[1],
          p[2],
          p[3],
          p[4],
          p[5],
          p[6],
          p[7],
          p[8],
          p[9],
          p[10],
        ),
      );
    },
    stridedCopy(geometry, x, y) {
      const args: Arg[] = [
        [geometry, "in"],
        [x, "in"],
        [y, "out"],
      ];
      call("stridedCopy", args, (e, p) => e.peft_strided_copy(p[0], p[1], p[2]));
    },
  };
}
