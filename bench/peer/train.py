"""PyTorch peer for bench/train.ts: one LoRA training step (forward, backward, AdamW) on
the SmolLM2-135M-shaped Llama of llama.py, r=16 on q, k, v, o, plain torch modules.
With a bfloat16 base the adapters stay float32 and the input is cast to them, as PEFT does.

Prints one JSON object on its last line: {"<base dtype>": seconds per step (median)}.
"""
import argparse
import json
import statistics
import time

import torch

from llama import SMOLLM2, Llama, lora_step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--batch", default="4x256")
    p.add_argument("--r", type=int, default=16)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    b, t = (int(v) for v in a.batch.split("x"))
    out = {}
    for name in a.dtypes.split(","):
        model = Llama(SMOLLM2, a.layers).to(getattr(torch, name))
        # Adapters are created after the cast, so they are float32 on either base.
        step = lora_step(model, torch.randint(0, SMOLLM2.vocab, (b, t)), a.r)
        step()
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    print(json.dumps(out))


main()
