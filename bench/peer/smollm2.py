"""The SmolLM2-135M-shaped Llama written with plain torch modules (no transformers),
shared by the forward and train peers.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

H, I, V, NH, NKV, D, THETA, EPS = 576, 1536, 49152, 9, 3, 64, 100000.0, 1e-5


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(H))

    def forward(self, x):
        v = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x.float() * torch.rsqrt(v + EPS)).to(x.dtype)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(H, NH * D, bias=False)
        self.k = nn.Linear(H, NKV * D, bias=False)
        self.v = nn.Linear(H, NKV * D, bias=False)
        self.o = nn.Linear(NH * D, H, bias=False)
        self.gate = nn.Linear(H, I, bias=False)
        self.up = nn.Linear(H, I, bias=False)
        self.down = nn.Linear(I, H, bias=False)
        self.n1, self.n2 = RMSNorm(), RMSNorm()

    def forward(self, x, cos, sin, cache):
        b, t, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, t, NH, D).transpose(1, 2)
        k = self.k(h).view(b, t, NKV, D).transpose(1, 2)
        v = self.v(h).view(b, t, NKV, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat([cache[0], k], 2)
                v = torch.cat([cache[1], v], 2)
            cache[0], cache[1] = k, v
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        s = q @ k.transpose(-1, -2) / math.sqrt(D)
        tk = k.shape[2]
        causal = torch.ones(t, tk, dtype=torch.bool).tril(tk - t)
        s = s.masked_fill(~causal, torch.finfo(s.dtype).min)
        a = F.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, t, NH * D))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.embed = nn.Embedding(V, H)
        self.layers = nn.ModuleList(Layer() for _ in range(layers))
        self.norm = RMSNorm()
        inv = 1.0 / (THETA ** (torch.arange(0, D, 2).float() / D))
        self.register_buffer("inv_freq", inv)

    def forward(self, ids, start=0, caches=None):
        t = ids.shape[1]
        pos = torch.arange(start, start + t).float()
        emb = torch.cat([torch.outer(pos, self.inv_freq)] * 2, -1)
        x = self.embed(ids)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.embed.weight.t()


