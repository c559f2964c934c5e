// The demo's fine-tuning run, shared by the page's worker and by the browser test's Node
// reference: given peft-ts's exports, the model's files and the dataset's bytes, it trains
// a LoRA adapter and returns the answers before and after, the losses and the adapter's
// files. The same seed and backend give the same bytes in a browser and in Node.

/** Greedy answers of `peft` to each prompt (the adapter on, or off with `base`). */
function answers(p, peft, tokenizer, prompts, base) {
  const run = () =>
    prompts.map((prompt) => {
      const ids = tokenizer.encode(prompt);
      const out = peft.generate(p.Tensor.from([ids], [1, ids.length], "int64"), {
        maxNewTokens: 8,
        eosTokenId: tokenizer.eosTokenId,
      });
      const tokens = out.toArray()[0].slice(ids.length);
      return tokenizer.decode(tokens, { skipSpecialTokens: true }).trim();
    });
  return base ? peft.disableAdapter(run) : run();
}

/** Prompt/completion records' prompts, for showing answers. */
function promptsOf(dataset, limit) {
  const text = new TextDecoder().decode(dataset.bytes);
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l))
    .map((r) => r.prompt ?? r.text?.slice(0, 40))
    .filter((s) => typeof s === "string")
    .slice(0, limit);
}

/**
 * @param p peft-ts's exports
 * @param files a ModelFiles (fetchModelFiles, filesFromBlobs)
 * @param dataset { name, bytes } of a JSONL dataset
 * @param options { steps, seed, lr, batchSize, onStep(metrics) }
 */
export function fineTune(p, files, dataset, options = {}) {
  const { steps = 60, seed = 0, lr = 1e-2, batchSize = 12, onStep = () => {} } = options;
  p.manualSeed(seed);
  const tokenizer = p.Tokenizer.fromPretrained(files);
  const peft = p.getPeftModel(p.AutoModelForCausalLM.fromPretrained(files), p.DEMO_LORA);
  const prompts = promptsOf(dataset, 6);
  const before = answers(p, peft, tokenizer, prompts, true);
  const trainer = new p.Trainer(
    peft,
    { maxSteps: steps, batchSize, lr, schedule: "cosine", warmupSteps: 5, logEvery: 1, seed },
    { train: p.loadDataset(dataset, tokenizer, 256) },
    tokenizer.padTokenId ?? 0,
    {
      onLog: (m) =>
        onStep({ step: m.step, steps, loss: m.loss, tokensPerSecond: m.tokensPerSecond }),
    },
  );
  const { losses } = trainer.train();
  const after = answers(p, peft, tokenizer, prompts, false);
  return { prompts, before, after, losses, files: peft.adapterFiles() };
}
