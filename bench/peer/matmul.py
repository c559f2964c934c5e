"""PyTorch peer for bench/matmul.ts: torch.matmul GFLOP/s, 2 threads, median of runs.

Prints one JSON object on its last line: {"MxKxN:dtype": gflops, ...}.
"""
import argparse
import json
import statistics
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--shapes", default="512x768x768")
parser.add_argument("--dtypes", default="float32,bfloat16")
parser.add_argument("--runs", type=int, default=10)
args = parser.parse_args()

torch.set_num_threads(2)
torch.manual_seed(0)
result = {}
for shape in args.shapes.split(","):
    m, k, n = (int(v) for v in shape.split("x"))
    for name in args.dtypes.split(","):
        dtype = getattr(torch, name)
        a = torch.randn(m, k).to(dtype)
        b = torch.randn(k, n).to(dtype)
        for _ in range(2):
            torch.matmul(a, b)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - t0)
        result[f"{shape}:{name}"] = 2 * m * k * n / statistics.median(times) / 1e9
print(json.dumps(result))
