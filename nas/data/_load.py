"""``load_dataset``: read a source, take the seeded subset and split, resize, normalise, return tensors."""

from __future__ import annotations

import logging

import numpy as np

from nas.data._sources import RawSource, read_cifar10, read_digits, read_imagefolder
from nas.data._spec import DatasetKind, DatasetSpec, ProxyData
from nas.data._split import stratified_split, stratified_subset
from nas.errors import DatasetError

log = logging.getLogger(__name__)


def _read(spec: DatasetSpec) -> RawSource:
    if spec.kind is DatasetKind.digits:
        return read_digits()
    assert spec.path is not None
    path = spec.path.expanduser()
    if spec.kind is DatasetKind.cifar10:
        return read_cifar10(path)
    return read_imagefolder(path, spec.resolution)


def load_dataset(spec: DatasetSpec) -> ProxyData:
    """Load a proxy dataset into memory as normalised ``[N, 3, R, R]`` float tensors.

    Deterministic in ``spec``: the subset and the stratified split depend only on ``spec.seed``.
    Images are resized bilinearly (antialiased when shrinking) and normalised per channel with the
    *training* split's mean and std, so nothing about the validation images leaks into training.
    Raises :class:`DatasetError` naming the path and the problem.
    """
    import torch
    from torch.nn import functional as F

    source = _read(spec)
    where = str(spec.path) if spec.path is not None else spec.kind.value
    labels = source.labels
    keep = np.arange(len(labels))
    if spec.subset is not None:
        if spec.subset > len(labels):
            raise DatasetError(where, f"subset {spec.subset} exceeds the {len(labels)} examples available")
        keep = stratified_subset(labels, spec.subset, spec.seed)
    if len(keep) < 2:
        raise DatasetError(where, f"needs at least 2 examples for a train/validation split, has {len(keep)}")
    train_i, val_i = stratified_split(labels[keep], spec.val_fraction, spec.seed)
    train_i, val_i = keep[train_i], keep[val_i]

    def tensor(idx: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(source.images(idx)))
        if x.shape[-2:] != (spec.resolution, spec.resolution):
            shrink = x.shape[-1] > spec.resolution or x.shape[-2] > spec.resolution
            x = F.interpolate(x, size=(spec.resolution, spec.resolution), mode="bilinear",
                              align_corners=False, antialias=shrink)
        return x

    train_x, val_x = tensor(train_i), tensor(val_i)
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    data = ProxyData(
        train_x=((train_x - mean) / std).contiguous(),
        train_y=torch.from_numpy(labels[train_i].copy()),
        val_x=((val_x - mean) / std).contiguous(),
        val_y=torch.from_numpy(labels[val_i].copy()),
        num_classes=len(source.class_names),
        name=spec.name,
        class_names=list(source.class_names),
    )
    log.info("loaded %s", data)
    return data
