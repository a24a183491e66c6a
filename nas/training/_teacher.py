"""Building ``nas train``'s starting weights and teacher from a supernet or a state file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.arch import Architecture, load_architecture
from nas.errors import TrainingError
from nas.training._job import TeacherSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nas.supernet import LoadedSupernet


def inherited_state(loaded: LoadedSupernet, arch: Architecture) -> dict[str, Any]:
    """The state dict of ``arch``'s subnet, as the builder's network names it."""
    from nas.supernet import extract

    return extract(loaded.net, arch).state_dict()


def build_teacher(spec: TeacherSpec, loaded: LoadedSupernet | None, num_classes: int,
                  calib_x: torch.Tensor, batch_size: int) -> tuple[nn.Module, dict[str, Any]]:
    """(teacher in eval mode, provenance). Supernet subnets get their BN statistics re-estimated first."""
    from nas.export import load_state
    from nas.proxies._speed import crop_depthwise_kernels
    from nas.proxies._train import recalibrate_bn
    from nas.supernet import extract, largest_architecture

    if spec.source.endswith(".pt"):
        arch, model, provenance = load_state(Path(spec.source))
        info: dict[str, Any] = {"kind": "state", "file": spec.source, "arch_hash": arch.hash}
    else:
        if loaded is None:
            raise TrainingError(f"teacher {spec.source!r}: takes its weights from a supernet; give --supernet")
        if spec.source == "largest":
            arch = largest_architecture(loaded.net.space, loaded.net.num_classes)
        else:
            arch = load_architecture(spec.source).with_(num_classes=loaded.net.num_classes)
        model = extract(loaded.net, arch)
        recalibrate_bn(model, calib_x, batch_size)
        info = {"kind": "supernet subnet", "supernet": str(loaded.path), "source": spec.source, "arch_hash": arch.hash}
    if arch.num_classes != num_classes:
        raise TrainingError(f"teacher {spec.source!r} has {arch.num_classes} outputs; the data has {num_classes}")
    crop_depthwise_kernels(model)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), {**info, "alpha": spec.alpha, "temperature": spec.temperature}
