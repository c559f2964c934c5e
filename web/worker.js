// Trains off the page's main thread: loads the model (over HTTP, or from files the user
// picked), reports every step, and sends back the answers and the adapter's files.
import * as p from "./peft.js";
import { fineTune } from "./train.js";

addEventListener("message", async ({ data }) => {
  try {
    const post = (message) => postMessage(message);
    post({ type: "status", text: "loading the model" });
    const files =
      data.modelUrl !== undefined
        ? await p.fetchModelFiles(data.modelUrl, {
            onProgress: ({ file, loaded, total }) =>
              post({
                type: "status",
                text: `loading ${file}: ${loaded}${total ? ` of ${total}` : ""} bytes`,
              }),
          })
        : await p.filesFromBlobs(data.modelFiles);
    const dataset =
      data.dataUrl !== undefined
        ? {
            name: data.dataUrl,
            bytes: new Uint8Array(await (await fetch(data.dataUrl)).arrayBuffer()),
          }
        : { name: data.dataFile.name, bytes: new Uint8Array(await data.dataFile.arrayBuffer()) };
    // The matmul workers start only while this thread is idle, so before the training loop.
    post({ type: "info", backend: await p.startBackend() });
    post({ type: "status", text: "training" });
    const t0 = performance.now();
    const result = fineTune(p, files, dataset, {
      steps: data.steps,
      seed: data.seed,
      onStep: (m) => post({ type: "step", ...m }),
    });
    post({ type: "done", seconds: (performance.now() - t0) / 1000, ...result });
  } catch (e) {
    postMessage({
      type: "error",
      message: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
  }
});
