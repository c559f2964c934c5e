"""PyTorch peer for bench/train.ts: one LoRA training step (forward, backward, AdamW) on
the SmolLM2-135M-shaped Llama of smollm2.py, r=16 on q, k, v, o, plain torch modules.
With a bfloat16 base the adapters stay float32 and the input is cast to them, as PEFT does.

Prints one JSON object on its last line: {"<base dtype>": seconds per step (median)}.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from smollm2 import V, Model


class LoraLinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.a = nn.Linear(base.in_features, r, bias=False)
        self.b = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.a.weight, a=math.sqrt(5))
        nn.init.zeros_(self.b.weight)
        self.scale = alpha / r

    def forward(self, x):
        out = self.base(x)
        delta = self.b(self.a(x.to(self.a.weight.dtype))) * self.scale
        return out + delta.to(out.dtype)


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
        model = Model(a.layers).to(getattr(torch, name))
        for prm in model.parameters():
            prm.requires_grad_(False)
        # Adapters are created after the cast, so they are float32 on either base.
        for layer in model.layers:
            for attr in ("q", "k", "v", "o"):
                setattr(layer, attr, LoraLinear(getattr(layer, attr), a.r, 2 * a.r))
        params = [prm for prm in model.parameters() if prm.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        ids = torch.randint(0, V, (b, t))
        model.train()

        def step():
            logits = model(ids)
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, V), ids[:, 1:].reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad()

        step()
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    print(json.dumps(out))


main()
