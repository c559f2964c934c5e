// The page: starts a training worker, draws its losses, shows the answers before and
// after, and offers the adapter's two files for download.
const $ = (id) => document.getElementById(id);
const losses = [];
let worker = null;

function drawChart(steps) {
  const canvas = $("chart");
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (losses.length === 0) return;
  const top = Math.max(...losses);
  g.strokeStyle = "#2a6";
  g.lineWidth = 2;
  g.beginPath();
  losses.forEach((loss, i) => {
    const x = 10 + (i / Math.max(1, steps - 1)) * (canvas.width - 20);
    const y = canvas.height - 10 - (loss / top) * (canvas.height - 20);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#222";
  g.fillText(`loss ${losses.at(-1).toFixed(4)} (start ${losses[0].toFixed(4)})`, 14, 16);
}

function showAnswers(prompts, before, after) {
  const body = $("answers").querySelector("tbody");
  body.replaceChildren(
    ...prompts.map((prompt, i) => {
      const row = document.createElement("tr");
      for (const text of [prompt.replace("\n", " "), before[i], after?.[i] ?? ""]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
}

function offerDownload(files) {
  const links = Object.entries(files).map(([name, bytes]) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([bytes]));
    a.download = name;
    a.textContent = name;
    a.style.marginRight = "1rem";
    return a;
  });
  $("download").replaceChildren("The adapter, for Python's PEFT or peft-ts: ", ...links);
}

function start(message) {
  worker?.terminate();
  losses.length = 0;
  drawChart(1);
  $("download").replaceChildren();
  $("answers").querySelector("tbody").replaceChildren();
  worker = new Worker("./worker.js", { type: "module" });
  worker.onmessage = ({ data }) => {
    if (data.type === "status") $("status").textContent = data.text;
    else if (data.type === "info") {
      window.peftInfo = data.backend;
      $("backend").textContent =
        `${data.backend.backend} backend (${data.backend.wasm ?? "no wasm"}), ${data.backend.threads} thread(s)${crossOriginIsolated ? ", cross-origin isolated" : ""}`;
    } else if (data.type === "step") {
      losses.push(data.loss);
      drawChart(data.steps);
      $("status").textContent = `step ${data.step} of ${data.steps}`;
      $("speed").textContent = `${Math.round(data.tokensPerSecond)} tokens/s`;
    } else if (data.type === "done") {
      $("status").textContent = `done: ${data.losses.length} steps in ${data.seconds.toFixed(1)} s`;
      showAnswers(data.prompts, data.before, data.after);
      offerDownload(data.files);
      window.peftResult = data;
    } else if (data.type === "error") {
      $("status").textContent = `failed: ${data.message}`;
      window.peftResult = { error: data.message };
      console.error(data.message);
    }
  };
  worker.postMessage(message);
}

$("train-demo").onclick = () =>
  start({
    modelUrl: new URL("model/", location.href).href,
    dataUrl: "train.jsonl",
    steps: Number($("steps").value),
    seed: 0,
  });
$("train-own").onclick = () => {
  const modelFiles = [...$("model-folder").files];
  const dataFile = $("dataset").files[0];
  if (modelFiles.length === 0 || dataFile === undefined) {
    $("status").textContent = "pick a model folder and a dataset first";
    return;
  }
  start({ modelFiles, dataFile, steps: Number($("steps").value), seed: 0 });
};
$("backend").textContent = crossOriginIsolated
  ? "cross-origin isolated"
  : "not cross-origin isolated (one thread)";
