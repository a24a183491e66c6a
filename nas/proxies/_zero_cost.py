"""Zero-cost proxies: score an untrained network from one minibatch, to screen many candidates cheaply.

Each proxy is ``(model, batch_x, batch_y) -> float`` (higher means predicted better), works on a deep
copy (the caller's weights, BN statistics and gradients are untouched) and is deterministic for
fixed weights and batch; :func:`zero_cost_score` also seeds the initialisation.

BN and activations, following the zero-cost literature (Abdelfattah et al. 2021, "Zero-Cost Proxies for
Lightweight NAS"; Tanaka et al. 2020; Mellor et al. 2021):

- synflow: BN removed (the literature builds its networks without BN for synflow), every parameter
  replaced by its absolute value, float64, an all-ones input. On that all-positive signal ReLU is the
  identity, so the score is the network's path norm; ReLU6 and hswish are replaced by the identity too
  (they would clip at 6 or square the signal, which is not what the path norm measures). The SE
  gate (hard-sigmoid) is left alone: it saturates at 1 on the positive signal, so SE acts as identity.
- NASWOT: BN in training mode (batch statistics, as at initialisation in the paper); dropout off.
  Each ReLU-like unit contributes the binary code ``pre-activation > 0``. For ReLU6 this ignores the
  upper clip; for hswish ``x > 0`` is exactly where its output is positive (it is 0 below -3 and slightly
  negative in (-3, 0)), so the code marks the same "on" region as a ReLU. Score: ``log|det K|`` with
  ``K = C C^T + (1 - C)(1 - C)^T`` (the Hamming-similarity kernel); ``-inf`` when two inputs share a code.
- grad-norm: BN in training mode, dropout off; cross-entropy on the batch; the sum over conv and linear
  weights of the L2 norm of their gradients.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from nas.arch import Architecture

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nas.data import ProxyData

ZeroCostProxy = Callable[["nn.Module", "torch.Tensor", "torch.Tensor"], float]


def _dropout_off(model: nn.Module) -> None:
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Dropout | nn.Dropout2d):
            m.eval()


def synflow(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor) -> float:
    """Synaptic flow (Tanaka et al. 2020): sum of |theta * dR/dtheta| over conv and linear weights, with
    R the output sum of the BN-free, |weights|, linearised network on an all-ones input (float64).
    Only ``batch_x``'s shape is used: synflow is data-free."""
    import torch
    from torch import nn

    net = copy.deepcopy(model).double()
    for child in list(net.modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, nn.BatchNorm2d | nn.ReLU | nn.ReLU6 | nn.Hardswish):
                setattr(child, attr, nn.Identity())
    net.eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *batch_x.shape[1:]), dtype=torch.float64, device=batch_x.device)
    net(ones).sum().backward()
    total = 0.0
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear) and m.weight.grad is not None:
                total += float((m.weight * m.weight.grad).abs().sum())
    return total


def naswot(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021): log|det K| of the binary activation-code kernel over the batch.
    Needs a batch of at least 2; larger batches separate networks better (the paper used 128)."""
    import torch
    from torch import nn

    net = copy.deepcopy(model)
    net.train()
    _dropout_off(net)
    n = batch_x.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=batch_x.device)

    def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        # A pre-hook: the activations are in-place, so their input must be read before they run.
        code = (inputs[0].detach().reshape(n, -1) > 0).double()
        kernel.add_(code @ code.T).add_((1.0 - code) @ (1.0 - code).T)

    hooks = [m.register_forward_pre_hook(record) for m in net.modules()
             if isinstance(m, nn.ReLU | nn.ReLU6 | nn.Hardswish)]
    try:
        with torch.no_grad():
            net(batch_x)
    finally:
        for h in hooks:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) != 0 else -math.inf


def grad_norm(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor) -> float:
    """Sum over conv and linear weights of ||dL/dW||_2 for the cross-entropy loss on the batch."""
    from torch import nn

    net = copy.deepcopy(model)
    net.train()
    _dropout_off(net)
    net.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(batch_x), batch_y).backward()
    total = 0.0
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear) and m.weight.grad is not None:
            total += float(m.weight.grad.norm())
    return total


ZERO_COST_PROXIES: dict[str, ZeroCostProxy] = {"synflow": synflow, "naswot": naswot, "grad_norm": grad_norm}


def proxy_batch(data: ProxyData, batch_size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded, class-stratified batch from the training split (the same one for every candidate)."""
    import torch

    from nas.data import stratified_subset

    n = min(batch_size, len(data.train_y))
    idx = torch.from_numpy(stratified_subset(data.train_y.numpy(), n, seed))
    return data.train_x[idx], data.train_y[idx]


def zero_cost_score(arch: Architecture, data: ProxyData, proxy: str = "synflow", batch_size: int = 64,
                    seed: int = 0, threads: int | None = None) -> float:
    """Seed, build ``arch`` (with ``data``'s class count) and score it with one proxy on a fixed batch."""
    from nas.builder import build_model
    from nas.errors import NotFoundError
    from nas.proxies._train import seeded

    if proxy not in ZERO_COST_PROXIES:
        raise NotFoundError("zero-cost proxy", proxy, list(ZERO_COST_PROXIES))
    batch_x, batch_y = proxy_batch(data, batch_size, seed)
    with seeded(seed, threads):
        model = build_model(arch.with_(num_classes=data.num_classes))
        return ZERO_COST_PROXIES[proxy](model, batch_x, batch_y)
