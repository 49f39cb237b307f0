"""Make a tiny cat/dog image set in the layout of CHTC's cat/dog example: DIR/{cat,dog}/*.png.

    python examples/make_catdog_images.py --data-dir data/catdog --per-class 200 --size 32

The "cats" are warm-coloured discs and the "dogs" cool-coloured squares, with noise, drawn with
PIL: enough for a small CNN to learn, nothing downloaded.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("cat", "dog")


def make_images(data_dir: str | Path, per_class: int = 200, size: int = 32, seed: int = 0) -> Path:
    """Write `per_class` PNG images per class under data_dir/<class>/; return data_dir."""
    root = Path(data_dir)
    rng = random.Random(seed)
    tmp = root.with_name(root.name + ".partial")
    for label in CLASSES:
        (tmp / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            bg = tuple(rng.randrange(0, 120) for _ in range(3))
            img = Image.new("RGB", (size, size), bg)
            draw = ImageDraw.Draw(img)
            r = rng.randrange(size // 5, size // 3)
            cx, cy = rng.randrange(r, size - r), rng.randrange(r, size - r)
            box = (cx - r, cy - r, cx + r, cy + r)
            if label == "cat":
                draw.ellipse(box, fill=(rng.randrange(180, 256), rng.randrange(80, 160), 40))
            else:
                draw.rectangle(box, fill=(40, rng.randrange(80, 160), rng.randrange(180, 256)))
            for _ in range(size):  # speckle noise
                draw.point((rng.randrange(size), rng.randrange(size)),
                           fill=tuple(rng.randrange(256) for _ in range(3)))
            img.save(tmp / label / f"{label}.{i:05d}.png")
    tmp.rename(root)
    return root


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data/catdog")
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if Path(args.data_dir).exists():
        print(f"{args.data_dir} exists; nothing to do")
        return
    root = make_images(args.data_dir, args.per_class, args.size, args.seed)
    print(f"wrote {2 * args.per_class} images under {root}")


if __name__ == "__main__":
    main()
