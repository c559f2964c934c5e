"""A Llama written with plain torch modules (no transformers), shared by the peers:
the SmolLM2-135M shape for forward.py and train.py, the Llama-3.2-1B shape for llama1b.py.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Shape:
    hidden: int
    inter: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    theta: float
    eps: float
    # (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings)
    llama3: tuple = None


SMOLLM2 = Shape(576, 1536, 49152, 9, 3, 64, 100000.0, 1e-5)
LLAMA_3_2_1B = Shape(2048, 8192, 128256, 32, 8, 64, 500000.0, 1e-5, (32.0, 1.0, 4.0, 8192))


def inv_freq(s):
    inv = 1.0 / (s.theta ** (torch.arange(0, s.head_dim, 2).float() / s.head_dim))
    if s.llama3 is None:
        return inv
    # Llama 3's rule: long wavelengths divided by the factor, short ones kept, a smooth
    # blend between them.
    factor, low, high, orig = s.llama3
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > orig / low, inv / factor, inv)
    smooth = (orig / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= orig / high) & (wavelen <= orig / low)
    return torch.where(medium, blended, scaled)


class RMSNorm(nn.Module):
    def __init__(self, s, device=None):
        super().__init__()
        self.eps = s.eps
        self.weight = nn.Parameter(torch.ones(s.hidden, device=device))

    def forward(self, x):
        v = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x.float() * torch.rsqrt(v + self.eps)).to(x.dtype)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Layer(nn.Module):
    def __init__(self, s, device=None):
        super().__init__()
        self.s = s
        h, d = s.hidden, s.head_dim
        self.q = nn.Linear(h, s.heads * d, bias=False, device=device)
        self.k = nn.Linear(h, s.kv_heads * d, bias=False, device=device)
        self.v = nn.Linear(h, s.kv_heads * d, bias=False, device=device)
        self.o = nn.Linear(s.heads * d, h, bias=False, device=device)
        self.gate = nn.Linear(h, s.inter, bias=False, device=device)
        self.up = nn.Linear(h, s.inter, bias=False, device=device)
        self.down = nn.Linear(s.inter, h, bias=False, device=device)
        self.n1, self.n2 = RMSNorm(s, device), RMSNorm(s, device)

    def forward(self, x, cos, sin, cache):
        s = self.s
        b, t, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, t, s.heads, s.head_dim).transpose(1, 2)
        k = self.k(h).view(b, t, s.kv_heads, s.head_dim).transpose(1, 2)
        v = self.v(h).view(b, t, s.kv_heads, s.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat([cache[0], k], 2)
                v = torch.cat([cache[1], v], 2)
            cache[0], cache[1] = k, v
        k = k.repeat_interleave(s.heads // s.kv_heads, dim=1)
        v = v.repeat_interleave(s.heads // s.kv_heads, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(s.head_dim)
        tk = k.shape[2]
        causal = torch.ones(t, tk, dtype=torch.bool).tril(tk - t)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
        a = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, t, s.heads * s.head_dim))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    """Tied embeddings. device="meta" builds it without memory, for weights loaded later."""

    def __init__(self, s, layers, device=None):
        super().__init__()
        self.s = s
        self.embed = nn.Embedding(s.vocab, s.hidden, device=device)
        self.layers = nn.ModuleList(Layer(s, device) for _ in range(layers))
        self.norm = RMSNorm(s, device)
        self.register_buffer("inv_freq", inv_freq(s))

    def forward(self, ids, start=0, caches=None):
        t = ids.shape[1]
        pos = torch.arange(start, start + t).float()
        emb = torch.cat([torch.outer(pos, self.inv_freq)] * 2, -1)
        x = self.embed(ids)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.embed.weight.t()


class LoraLinear(nn.Module):
    """With a bfloat16 base the adapter stays float32 and its input is cast to it, as PEFT does."""

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


def lora_step(model, ids, r=16):
    """Freezes the model, adds float32 LoRA (alpha 2r) on q, k, v, o; returns one AdamW step."""
    for prm in model.parameters():
        prm.requires_grad_(False)
    for layer in model.layers:
        for attr in ("q", "k", "v", "o"):
            setattr(layer, attr, LoraLinear(getattr(layer, attr), r, 2 * r))
    params = [prm for prm in model.parameters() if prm.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    model.train()
    vocab = model.s.vocab

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()

    return step


def greedy(model, prompt, new_tokens):
    """Greedy decoding with a KV cache, one token per step."""
    with torch.no_grad():
        caches = [[None, None] for _ in model.layers]
        logits = model(prompt, 0, caches)
        pos = prompt.shape[1]
        for _ in range(new_tokens):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            logits = model(nxt, pos, caches)
            pos += 1


def blas():
    """The BLAS library this process has mapped, as a path."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "blas" in line and "/" in line}
    return ", ".join(sorted(paths)) or "none found"
