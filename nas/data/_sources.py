"""Readers for the three proxy sources. Each returns labels first and decodes images on demand, so a
subset of a large source is cheap: only the chosen examples become float arrays.

Images come back as float32 ``[n, 3, H, W]`` in [0, 1]; resizing and normalisation happen in ``_load``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


@dataclass
class RawSource:
    labels: np.ndarray
    class_names: list[str]
    images: Callable[[np.ndarray], np.ndarray]  # indices -> float32 [n, 3, H, W] in [0, 1]


# -- digits ------------------------------------------------------------------------------------
def read_digits() -> RawSource:
    """scikit-learn's 8x8 handwritten digits (1797 images, values 0..16), shipped with the package."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.asarray(bunch.images, dtype=np.float32) / 16.0

    def images(idx: np.ndarray) -> np.ndarray:
        return np.repeat(pixels[idx][:, None], 3, axis=1)

    return RawSource(np.asarray(bunch.target, dtype=np.int64), [str(n) for n in bunch.target_names], images)


# -- CIFAR-10 (python pickle layout) ----------------------------------------------------------------
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Only what a CIFAR batch needs (numpy arrays, lists, dicts): a batch file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetError(str(path), "missing CIFAR-10 batch file (expected the python pickle layout)")
    try:
        with path.open("rb") as f:
            obj = _BatchUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # pickle raises many types for corrupt input
        raise DatasetError(str(path), f"malformed pickle: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, dict):
        raise DatasetError(str(path), f"malformed batch: expected a dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _cifar_root(path: Path) -> Path:
    if not path.exists():
        raise DatasetError(str(path), "CIFAR-10 directory does not exist")
    if not path.is_dir():
        raise DatasetError(str(path), "CIFAR-10 path is not a directory")
    nested = path / "cifar-10-batches-py"
    return nested if nested.is_dir() and not (path / "batches.meta").exists() else path


def _cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    for key in ("data", "labels"):
        if key not in batch:
            raise DatasetError(str(path), f"malformed batch: no {key!r} entry (keys: {sorted(batch)})")
    data, labels = batch["data"], np.asarray(batch["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DatasetError(str(path), f"malformed batch: 'data' must be uint8 [N, 3072], got {shape} "
                                      f"{getattr(data, 'dtype', type(data).__name__)}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(str(path), f"malformed batch: 'labels' must be {len(data)} integers")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(str(path), f"malformed batch: labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar10(path: Path) -> RawSource:
    root = _cifar_root(path)
    meta = _unpickle(root / "batches.meta")
    names = meta.get("label_names")
    if not isinstance(names, list) or not names:
        raise DatasetError(str(root / "batches.meta"), "malformed meta: no 'label_names' list")
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    parts = [_cifar_batch(root / name, len(class_names)) for name in CIFAR_TRAIN_BATCHES]
    pixels = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])

    def images(idx: np.ndarray) -> np.ndarray:
        return pixels[idx].astype(np.float32) / 255.0

    return RawSource(labels, class_names, images)


# -- ImageFolder -----------------------------------------------------------------------------------
def _scan_tree(root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    if not root.exists():
        raise DatasetError(str(root), "ImageFolder directory does not exist")
    if not root.is_dir():
        raise DatasetError(str(root), "ImageFolder path is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(str(root), "no class subfolders (expected root/<class>/<image>.png|jpg)")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not found:
            raise DatasetError(str(root / name), "empty class folder: no .png/.jpg/.jpeg files")
        files += found
        labels += [label] * len(found)
    return classes, files, np.asarray(labels, dtype=np.int64)


def _decode(path: Path, resolution: int) -> np.ndarray:
    """RGB, shorter side resized to ``resolution`` (bilinear), centre-cropped square, CHW in [0, 1]."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
    except Exception as exc:  # Pillow raises OSError, ValueError, DecompressionBombError, ...
        raise DatasetError(str(path), f"unreadable image: {type(exc).__name__}: {exc}") from None
    w, h = rgb.size
    scale = resolution / min(w, h)
    size = (max(resolution, round(w * scale)), max(resolution, round(h * scale)))
    rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    rgb = rgb.crop((left, top, left + resolution, top + resolution))
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0


def read_imagefolder(path: Path, resolution: int) -> RawSource:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise DatasetError(str(path), "reading ImageFolder trees needs Pillow: pip install pillow") from None
    classes, files, labels = _scan_tree(path)

    def images(idx: np.ndarray) -> np.ndarray:
        if len(idx) == 0:
            return np.zeros((0, 3, resolution, resolution), dtype=np.float32)
        return np.stack([_decode(files[i], resolution) for i in idx])

    return RawSource(labels, classes, images)
