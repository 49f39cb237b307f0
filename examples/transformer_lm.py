"""A small decoder-only transformer language model trained with automatic mixed precision.

    python examples/transformer_lm.py --data-dir data/tokens --batch-size 8 --seq-len 32 --amp bf16

Makes its own corpus (token ids from a random order-2 Markov chain, saved as .npy) when
--data-dir has none. Attention is `scaled_dot_product_attention` with a causal mask; under
--amp bf16 (the default) matmuls run in bfloat16 through torch.autocast, on a CPU as on a GPU.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


def make_corpus(path: Path, tokens: int, vocab: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    nxt = rng.integers(0, vocab, size=(vocab, 4))  # each token has 4 likely successors
    ids = np.empty(tokens, dtype=np.int32)
    ids[0] = 0
    for i in range(1, tokens):
        ids[i] = nxt[ids[i - 1], rng.integers(0, 4)] if rng.random() < 0.9 else rng.integers(vocab)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.npy")
    np.save(tmp, ids)
    tmp.replace(path)


class Windows(Dataset):
    def __init__(self, ids: np.ndarray, seq_len: int) -> None:
        self.ids = torch.from_numpy(ids.astype(np.int64))
        self.seq_len = seq_len

    def __len__(self) -> int:
        return (len(self.ids) - 1) // self.seq_len

    def __getitem__(self, i: int):
        s = i * self.seq_len
        chunk = self.ids[s:s + self.seq_len + 1]
        return chunk[:-1], chunk[1:]


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    def __init__(self, vocab: int, dim: int, heads: int, layers: int, seq_len: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, vocab, bias=False)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos[:, : idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.out(self.ln(x))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data/tokens")
    p.add_argument("--tokens", type=int, default=16_000)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--amp", choices=["bf16", "fp16", "off"], default="bf16")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    path = Path(args.data_dir) / "corpus.npy"
    if not path.exists():
        make_corpus(path, args.tokens, args.vocab, args.seed)
    loader = DataLoader(Windows(np.load(path), args.seq_len), batch_size=args.batch_size,
                        shuffle=True, drop_last=True)
    model = TinyLM(args.vocab, args.dim, args.heads, args.layers, args.seq_len).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    scaler = torch.amp.GradScaler(device, enabled=amp_dtype is torch.float16 and device == "cuda")
    for epoch in range(args.epochs):
        total, n = 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            with torch.autocast(device, dtype=amp_dtype or torch.float32,
                                enabled=amp_dtype is not None):
                logits = model(x)
                loss = F.cross_entropy(logits.float().view(-1, args.vocab), y.view(-1))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total, n = total + loss.item(), n + 1
        print(f"epoch {epoch}: loss {total / n:.3f} (perplexity {math.exp(total / n):.1f})")


if __name__ == "__main__":
    main()
