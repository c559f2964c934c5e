// One LoRA training step (r=16 on q, k, v, o; forward, backward, AdamW) on a decoder of
// the given config with random weights, timed: run the same way by bench/browser.ts in a
// headless browser's worker and in Node, so the two times compare like for like.

/**
 * One LoRA training step on `model`, ready to repeat (bench/lora-step.ts runs it in Node).
 * @param p peft-ts's exports
 */
export function loraStep(p, model, batch, seq) {
  const peft = p.getPeftModel(model, {
    peftType: "LORA",
    r: 16,
    loraAlpha: 32,
    targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"],
  });
  peft.train();
  const opt = new p.AdamW(
    model.parameters().filter((t) => t.requiresGrad),
    { lr: 1e-4 },
  );
  const ids = p.randint(0, model.config.vocabSize, [batch, seq], { seed: 1 });
  return () => {
    peft.forward({ inputIds: ids, labels: ids }).loss.backward();
    opt.step();
    opt.zeroGrad();
  };
}

/**
 * @param p peft-ts's exports
 * @param options { config (a DecoderConfig), dtype, batch, seq, runs }
 * @returns the median and every step's seconds (after one untimed step)
 */
export function timeLoraSteps(p, { config, dtype = "float32", batch = 4, seq = 256, runs = 3 }) {
  const model = new p.DecoderForCausalLM(config, { generator: new p.Generator(0) }).to(dtype);
  const step = loraStep(p, model, batch, seq);
  step();
  const all = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    step();
    all.push((performance.now() - t0) / 1000);
  }
  const sorted = [...all].sort((a, b) => a - b);
  return { seconds: sorted[Math.floor(sorted.length / 2)], all };
}
