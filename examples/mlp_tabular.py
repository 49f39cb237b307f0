"""An MLP on synthetic tabular data, trained with gradient accumulation.

    python examples/mlp_tabular.py --data-dir data/tabular --batch-size 128 --accum-steps 2

Makes its own data (a CSV of numeric features and a class label) when --data-dir has none.
Runs on a CPU in seconds. `advisor profile examples/mlp_tabular.py` profiles it unmodified.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data/tabular", help="where the CSV lives (made if absent)")
    p.add_argument("--rows", type=int, default=8192, help="rows to generate")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=8, help="hidden layers")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--accum-steps", type=int, default=2, help="micro-batches per optimizer step")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def make_data(path: Path, rows: int, features: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    w = rng.normal(size=(features, classes))
    y = (x @ w + 0.5 * rng.normal(size=(rows, classes))).argmax(axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    header = ",".join([f"f{i}" for i in range(features)] + ["label"])
    np.savetxt(tmp, np.column_stack([x, y]), delimiter=",", header=header, comments="",
               fmt="%.5g")
    tmp.replace(path)


def build_model(features: int, hidden: int, layers: int, classes: int) -> nn.Module:
    mods: list[nn.Module] = [nn.Linear(features, hidden), nn.ReLU()]
    for _ in range(layers - 1):
        mods += [nn.Linear(hidden, hidden), nn.ReLU()]
    mods.append(nn.Linear(hidden, classes))
    return nn.Sequential(*mods)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    path = Path(args.data_dir) / "train.csv"
    if not path.exists():
        make_data(path, args.rows, args.features, args.classes, args.seed)
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    x = torch.from_numpy(table[:, :-1].copy())
    y = torch.from_numpy(table[:, -1].astype(np.int64))
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True,
                        drop_last=True, num_workers=args.num_workers)
    model = build_model(x.shape[1], args.hidden, args.layers, args.classes)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        total = 0.0
        opt.zero_grad()
        for i, (xb, yb) in enumerate(loader):
            loss = loss_fn(model(xb), yb) / args.accum_steps
            loss.backward()
            total += loss.item()
            if (i + 1) % args.accum_steps == 0:
                opt.step()
                opt.zero_grad()
        print(f"epoch {epoch}: loss {total * args.accum_steps / len(loader):.4f}")


if __name__ == "__main__":
    main()
