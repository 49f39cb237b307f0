"""Batch inference: score a directory of synthetic feature shards with a small model.

    advisor profile --command "python examples/batch_inference.py --data-dir data/shards --output out/preds.csv"

Not a training loop: one task that reads its input shards, runs a model under
torch.inference_mode in batches and writes predictions; for the advisor's generic mode, which
measures the task as a whole (wall time, CPU time, peak RSS, bytes written). Makes its own
input shards and model weights when --data-dir has none.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def make_inputs(root: Path, shards: int, rows: int, features: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    tmp = root.with_name(root.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        np.save(tmp / f"shard-{i:04d}.npy", rng.normal(size=(rows, features)).astype(np.float32))
    tmp.rename(root)


def build_model(features: int, hidden: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, classes))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data/shards")
    p.add_argument("--output", default="out/predictions.csv")
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--rows", type=int, default=4096, help="rows per shard")
    p.add_argument("--features", type=int, default=128)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    root = Path(args.data_dir)
    if not root.exists():
        make_inputs(root, args.shards, args.rows, args.features, args.seed)
    model = build_model(args.features, args.hidden, args.classes).eval()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    t0 = time.perf_counter()
    rows = 0
    with open(tmp, "w") as fh, torch.inference_mode():
        fh.write("shard,row,label,score\n")
        for shard in sorted(root.glob("shard-*.npy")):
            x = torch.from_numpy(np.load(shard))
            for s in range(0, len(x), args.batch_size):
                probs = model(x[s:s + args.batch_size]).softmax(dim=1)
                score, label = probs.max(dim=1)
                for j, (lab, sc) in enumerate(zip(label.tolist(), score.tolist(), strict=True)):
                    fh.write(f"{shard.stem},{s + j},{lab},{sc:.4f}\n")
            rows += len(x)
    tmp.replace(out)
    print(f"scored {rows} rows in {time.perf_counter() - t0:.2f} s -> {out}")


if __name__ == "__main__":
    main()
