"""One-shot evaluation: a subnet's accuracy with inherited weights, after re-estimating its BN statistics.

Shared weights are trained under many subnets, so the supernet's running BN statistics fit none of them;
as in once-for-all, each subnet's statistics are re-estimated on a few training batches before it is
validated. The subnet is extracted first (``extract``), so evaluation never touches the shared weights
and several evaluations may run side by side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, overload

from nas.arch import Architecture

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nas.data import DatasetSpec
    from nas.supernet._model import Supernet
    from nas.supernet._store import LoadedSupernet


@dataclass(frozen=True)
class OneShotResult:
    accuracy: float
    seconds: float
    calibration_examples: int


@overload
def evaluate_subnet(supernet: Supernet, arch: Architecture, calib_x: torch.Tensor, val_x: torch.Tensor,
                    val_y: torch.Tensor, batch_size: int = ..., *, return_model: Literal[False] = ...
                    ) -> OneShotResult: ...
@overload
def evaluate_subnet(supernet: Supernet, arch: Architecture, calib_x: torch.Tensor, val_x: torch.Tensor,
                    val_y: torch.Tensor, batch_size: int = ..., *, return_model: Literal[True]
                    ) -> tuple[OneShotResult, nn.Module]: ...
def evaluate_subnet(supernet: Supernet, arch: Architecture, calib_x: torch.Tensor, val_x: torch.Tensor,
                    val_y: torch.Tensor, batch_size: int = 256, *, return_model: bool = False
                    ) -> OneShotResult | tuple[OneShotResult, nn.Module]:
    """Validation accuracy of ``arch`` with the supernet's weights and BN statistics from ``calib_x``
    (and, with ``return_model``, the recalibrated static network)."""
    from nas.proxies._speed import crop_depthwise_kernels
    from nas.proxies._train import evaluate, recalibrate_bn
    from nas.supernet._extract import extract

    start = time.perf_counter()
    net = extract(supernet, arch)
    crop_depthwise_kernels(net)  # exact, and much faster for 7x7 kernels on the last stages' tiny maps
    recalibrate_bn(net, calib_x, batch_size)
    accuracy = evaluate(net, val_x, val_y, batch_size)
    result = OneShotResult(accuracy, time.perf_counter() - start, int(len(calib_x)))
    return (result, net) if return_model else result


def oneshot_data(loaded: LoadedSupernet, calibration: int = 512, seed: int = 0,
                 dataset: DatasetSpec | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(calibration images, validation images, validation labels) of the supernet's own dataset (or
    ``dataset``) at its training resolution: what one-shot evaluation needs, loaded once."""
    import torch

    from nas.data import load_dataset
    from nas.errors import SupernetError
    from nas.proxies._train import _prepare
    from nas.supernet._spec import SupernetSpec

    spec = SupernetSpec.model_validate(loaded.meta["spec"])
    data = load_dataset(dataset or spec.dataset)
    if data.num_classes != loaded.net.num_classes:
        raise SupernetError(f"{data.name} has {data.num_classes} classes; the supernet {loaded.path} was trained "
                            f"for {loaded.net.num_classes}")
    train_x, _, val_x, val_y = _prepare(data, spec.recipe, torch.device("cpu"))
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed + 1))
    return train_x[order[:calibration]], val_x, val_y
