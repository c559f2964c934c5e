// Builds the optional native backend (Node-API addon on oneDNN) when oneDNN is installed.
// It never fails the installation: without oneDNN, peft-ts runs on its other backends.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const header = ["/usr/include/oneapi/dnnl/dnnl.h", "/usr/local/include/oneapi/dnnl/dnnl.h"].find(
  existsSync,
);
if (header === undefined) {
  console.log(
    "peft-ts: native backend unavailable (oneDNN not found); install Debian's libdnnl-dev and run `npm rebuild peft-ts` to enable it",
  );
  process.exit(0);
}
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp
  ? [process.execPath, [gyp, "rebuild"]]
  : ["npx", ["--yes", "node-gyp", "rebuild"]];
const result = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
if (result.status !== 0) {
  const reason = (result.stderr ?? "").trim().split("\n").slice(-1)[0] ?? "unknown error";
  console.log(
    `peft-ts: native backend unavailable (the build failed: ${reason}); everything still works on the wasm and reference backends`,
  );
} else {
  console.log("peft-ts: native backend built (oneDNN)");
}
