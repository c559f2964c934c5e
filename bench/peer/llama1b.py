"""PyTorch peer for bench/llama1b.ts: the Llama-3.2-1B-shaped model of llama.py in
bfloat16, its weights read from the bench's safetensors directory. Measures what the
bench measures: load time, peak resident memory after loading and overall, greedy
decode tokens/s (batch 1, KV cache, 16-token prompt) and a LoRA step (r=16 on q, k, v,
o, float32 adapters, AdamW).

Prints one JSON object on its last line with the bench's field names and the BLAS used.
"""
import argparse
import json
import os
import re
import resource
import statistics
import struct
import time

import torch
from torch import nn

from llama import LLAMA_3_2_1B, Llama, blas, greedy, lora_step

# The checkpoint's names for this model's modules.
RENAMES = [
    (r"^model\.embed_tokens\.", "embed."),
    (r"^model\.norm\.", "norm."),
    (r"^model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.", r"layers.\1.\2."),
    (r"^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.", r"layers.\1.\2."),
    (r"^model\.layers\.(\d+)\.input_layernorm\.", r"layers.\1.n1."),
    (r"^model\.layers\.(\d+)\.post_attention_layernorm\.", r"layers.\1.n2."),
]


def rename(key):
    for pattern, repl in RENAMES:
        key, n = re.subn(pattern, repl, key)
        if n:
            return key
    raise KeyError(f"no module for checkpoint tensor {key}")


def load(path, model):
    """Reads every bfloat16 tensor into its own buffer and makes it the module's parameter."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        start = 8 + n
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            begin, end = entry["data_offsets"]
            buf = bytearray(end - begin)
            f.seek(start + begin)
            f.readinto(buf)
            t = torch.frombuffer(buf, dtype=torch.bfloat16).reshape(entry["shape"])
            *parents, leaf = rename(key).split(".")
            owner = model
            for p in parents:
                owner = getattr(owner, p)
            setattr(owner, leaf, nn.Parameter(t, requires_grad=False))


def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--decode", type=int, default=16)
    p.add_argument("--seq", type=int, default=512)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    with open(os.path.join(a.dir, "config.json")) as f:
        layers = json.load(f)["num_hidden_layers"]
    model = None

    def build():
        nonlocal model
        model = Llama(LLAMA_3_2_1B, layers, device="meta")
        load(os.path.join(a.dir, "model.safetensors"), model)
        model.eval()

    load_s = seconds(build)
    after_load = peak()
    prompt = torch.randint(0, LLAMA_3_2_1B.vocab, (1, 16))
    greedy(model, prompt, 2)
    decode = [seconds(lambda: greedy(model, prompt, a.decode)) for _ in range(a.runs)]
    step = lora_step(model, torch.randint(0, LLAMA_3_2_1B.vocab, (1, a.seq)))
    step()
    steps = [seconds(step) for _ in range(a.runs)]
    print(
        json.dumps(
            {
                "loadSeconds": load_s,
                "peakAfterLoad": after_load,
                "decodeTokensPerSecond": a.decode / statistics.median(decode),
                "stepSeconds": statistics.median(steps),
                "peakOverall": peak(),
                "blas": blas(),
            }
        )
    )


main()
