"""PyTorch peer for bench/forward.ts: the SmolLM2-135M-shaped Llama of llama.py,
prefill and greedy decode with a KV cache.

Prints one JSON object on its last line: {"prefill:<dtype>": tokens/s, "decode:<dtype>": tokens/s}.
"""
import argparse
import json
import statistics
import time

import torch

from llama import SMOLLM2, Llama, greedy


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--prefill", default="4x256")
    p.add_argument("--decode", type=int, default=128)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    b, t = (int(v) for v in a.prefill.split("x"))
    out = {}
    for name in a.dtypes.split(","):
        model = Llama(SMOLLM2, a.layers).to(getattr(torch, name)).eval()
        ids = torch.randint(0, SMOLLM2.vocab, (b, t))
        prompt = torch.randint(0, SMOLLM2.vocab, (1, 16))
        with torch.no_grad():
            model(ids[:1, :16])
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                model(ids)
                times.append(time.perf_counter() - t0)
            out[f"prefill:{name}"] = b * t / statistics.median(times)
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                greedy(model, prompt, a.decode)
                times.append(time.perf_counter() - t0)
            out[f"decode:{name}"] = a.decode / statistics.median(times)
    print(json.dumps(out))


main()
