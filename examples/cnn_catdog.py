"""A small CNN that tells cats from dogs, reading image files from a directory.

    python examples/cnn_catdog.py --data-dir data/catdog --batch-size 32 --epochs 2 --num-workers 2

In the style of CHTC's cat/dog example: DIR/cat/*.png and DIR/dog/*.png, decoded with PIL in
DataLoader workers. Generates a tiny image set first when DIR is missing, so it runs in one
command (see make_catdog_images.py). Runs on a CPU in seconds.

As a job written by `advisor recommend` it follows the job contract: with ADVISOR_CHECKPOINT_DIR
set it saves a checkpoint there after every epoch and when it gets SIGTERM (an eviction, or the
checkpoint wrapper's interval), then exits 143; it resumes from that checkpoint when one is
there; with ADVISOR_OUTPUT_DIR set the final model goes there. Without them it writes
cnn_catdog.pt in the working folder, as before.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

CLASSES = ("cat", "dog")     # the folders make_catdog_images.py writes
CHECKPOINT = "checkpoint.pt"
STOPPED_EXIT_CODE = 128 + signal.SIGTERM   # "stopped by SIGTERM, checkpoint saved"


class ImageFolder(Dataset):
    """Images under root/<class>/, labelled by their folder."""

    def __init__(self, root: str | Path) -> None:
        self.items = []
        for label, name in enumerate(CLASSES):
            folder = Path(root) / name
            self.items += [(folder / f, label) for f in sorted(os.listdir(folder))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, label = self.items[i]
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), label


class SmallCNN(nn.Module):
    def __init__(self, width: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data/catdog")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--per-class", type=int, default=200, help="images per class to generate")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    stop: list[int] = []
    if os.environ.get("ADVISOR_CHECKPOINT_DIR"):   # from the start: SIGTERM may come at any time
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    torch.manual_seed(args.seed)
    if not Path(args.data_dir).exists():
        # Imported only here: a job receives its images and not this helper.
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from make_catdog_images import make_images
        make_images(args.data_dir, per_class=args.per_class, seed=args.seed)
    data = ImageFolder(args.data_dir)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.num_workers,
                        persistent_workers=args.num_workers > 0)
    model = SmallCNN(args.width)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    ckpt_dir = os.environ.get("ADVISOR_CHECKPOINT_DIR")
    out_dir = os.environ.get("ADVISOR_OUTPUT_DIR")
    start = resume(Path(ckpt_dir) / CHECKPOINT, model, opt) if ckpt_dir else 0
    for epoch in range(start, args.epochs):
        model.train()
        correct = seen = 0
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
            if stop:   # asked to stop: keep this epoch's progress, redo the epoch on resume
                save_checkpoint(Path(ckpt_dir or "."), model, opt, epoch)
                print(f"epoch {epoch}: stopped by SIGTERM, checkpoint saved", flush=True)
                sys.exit(STOPPED_EXIT_CODE)
        print(f"epoch {epoch}: accuracy {correct / seen:.3f}", flush=True)
        if ckpt_dir:
            save_checkpoint(Path(ckpt_dir), model, opt, epoch + 1)
    final = Path(out_dir) / "cnn_catdog.pt" if out_dir else Path("cnn_catdog.pt")
    final.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), final)


def save_checkpoint(folder: Path, model: nn.Module, opt: torch.optim.Optimizer, next_epoch: int) -> None:
    """Model, optimizer and the next epoch, written atomically (a file cut short by SIGKILL
    never replaces the last good checkpoint)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (CHECKPOINT + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": next_epoch}, tmp)
    os.replace(tmp, folder / CHECKPOINT)


def resume(path: Path, model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Load the checkpoint when there is one; the epoch to start from."""
    if not path.is_file():
        return 0
    state = torch.load(path, map_location="cpu")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    print(f"resumed from {path} at epoch {state['epoch']}", flush=True)
    return int(state["epoch"])


if __name__ == "__main__":
    main()
