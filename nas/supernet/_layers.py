"""Elastic layers: each holds the largest shape's parameters and runs any smaller shape by slicing them.

Width is elastic by taking the *first* channels (largest-first slicing; ``sort_channels`` puts the most
important channels first), so a subnet's weights are a prefix of the supernet's and can be copied into
a static network of ``nas.builder``. Grouped 1x1 convs use the block diagonal of the dense weight, with
the rows and columns given as channel indices when a block's channels are not a prefix (``_groups``).
The depthwise kernel is elastic as in once-for-all: a k x k kernel is the centre of the next larger one
passed through a learned (k*k x k*k) transformation, identity at initialisation and shared by the channels.
BatchNorm layers are built with ``nas.blocks``' settings; the supernet then gives them its space's eps and
momentum (``nas.builder.apply_batchnorm``), as the builder does for every extracted subnet.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F

from nas.blocks import ConvBNAct, activation
from nas.channels import se_channels


@lru_cache(maxsize=1)
def bn_settings() -> tuple[float, float | None]:
    """(eps, momentum) of the builder's BatchNorm layers, read from a block rather than hard-coded.

    The probe block is built under a forked RNG: its weight initialisation would otherwise consume random
    numbers once per process, so the first supernet trained in a process would differ from later ones."""
    with torch.random.fork_rng(devices=[]):
        bn = next(m for m in ConvBNAct(8, 8).modules() if isinstance(m, nn.BatchNorm2d))
    return bn.eps, bn.momentum


@lru_cache(maxsize=8)
def act_module(name: str) -> nn.Module:
    """The builder's activation module for ``name`` (stateless, so one instance serves every layer)."""
    return activation(name)


class ElasticConv(nn.Conv2d):
    """A dense conv (stem or 1x1) whose input/output channels are prefixes and whose groups are elastic."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, kernel // 2, bias=False)

    def weight_for(self, cin: int, cout: int, groups: int = 1, rows: torch.Tensor | None = None,
                   cols: torch.Tensor | None = None) -> torch.Tensor:
        """The (grouped) weight over output channels ``rows`` and input channels ``cols`` of the dense
        weight (prefixes of ``cout`` and ``cin`` when not given): group i joins the i-th slices of both."""
        w = self.weight[:cout] if rows is None else self.weight[rows]
        w = w[:, :cin] if cols is None else w[:, cols]
        if groups == 1:
            return w
        go, gi = cout // groups, cin // groups
        return torch.cat([w[i * go:(i + 1) * go, i * gi:(i + 1) * gi] for i in range(groups)], 0)

    def forward_sub(self, x: torch.Tensor, cout: int, groups: int = 1, rows: torch.Tensor | None = None,
                    cols: torch.Tensor | None = None) -> torch.Tensor:
        w = self.weight_for(int(x.shape[1]), cout, groups, rows, cols)
        return F.conv2d(x, w, None, self.stride, self.padding, 1, groups)


class ElasticDepthwise(nn.Conv2d):
    """Depthwise conv with the largest kernel; smaller kernels through learned centre transforms."""

    def __init__(self, channels: int, kernels: list[int], stride: int) -> None:
        big = max(kernels)
        super().__init__(channels, channels, big, stride, big // 2, groups=channels, bias=False)
        self.kernels = sorted(kernels, reverse=True)
        self.transforms = nn.ParameterDict({
            f"{a}to{b}": nn.Parameter(torch.eye(b * b)) for a, b in itertools.pairwise(self.kernels)
        })

    def kernel_for(self, channels: int, kernel: int, index: torch.Tensor | None = None) -> torch.Tensor:
        """The ``kernel`` x ``kernel`` weights of the first ``channels`` channels (or of channels ``index``)."""
        if kernel not in self.kernels:
            raise ValueError(f"kernel {kernel} is not one of this layer's {self.kernels}")
        w = self.weight[:channels] if index is None else self.weight[index]
        for a, b in itertools.pairwise(self.kernels):
            if a == kernel:
                break
            start = (a - b) // 2
            centre = w[:, :, start:start + b, start:start + b].reshape(channels, 1, b * b)
            w = F.linear(centre, self.transforms[f"{a}to{b}"]).reshape(channels, 1, b, b)
        return w

    def forward_sub(self, x: torch.Tensor, kernel: int, index: torch.Tensor | None = None) -> torch.Tensor:
        channels = int(x.shape[1])
        w = self.kernel_for(channels, kernel, index)
        pad = kernel // 2
        reach = min(pad, max(int(x.shape[-2]), int(x.shape[-1])) - 1)
        if reach < pad:  # taps that only ever see padding: same result, much faster (nas.proxies._speed)
            w = w[:, :, pad - reach:pad + reach + 1, pad - reach:pad + reach + 1]
        return F.conv2d(x, w, None, self.stride, reach, 1, channels)


class ElasticBN(nn.BatchNorm2d):
    """BatchNorm over the first ``x.shape[1]`` channels (or channels ``index``); running statistics are
    updated in place on them."""

    def __init__(self, channels: int) -> None:
        eps, momentum = bn_settings()
        super().__init__(channels, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        c = int(x.shape[1])
        factor = 0.0
        if self.training:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        assert self.running_mean is not None and self.running_var is not None
        if index is None:
            return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
                                self.training, factor, self.eps)
        mean, var = self.running_mean[index], self.running_var[index]  # copies: written back below
        out = F.batch_norm(x, mean, var, self.weight[index], self.bias[index], self.training, factor, self.eps)
        if self.training:
            with torch.no_grad():
                self.running_mean[index] = mean
                self.running_var[index] = var
        return out


class ElasticSE(nn.Module):
    """MobileNetV3's squeeze-excite (``nas.blocks.SqueezeExcite``) with a prefix of its weights."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = se_channels(channels)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        c = int(x.shape[1])
        sq = se_channels(c)
        channels = slice(0, c) if index is None else index
        assert self.fc1.bias is not None and self.fc2.bias is not None
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.relu(F.conv2d(s, self.fc1.weight[:sq, channels], self.fc1.bias[:sq]))
        s = F.conv2d(s, self.fc2.weight[channels, :sq], self.fc2.bias[channels])
        return x * F.hardsigmoid(s)


class ElasticLinear(nn.Linear):
    def weight_for(self, cin: int, out: int, cols: torch.Tensor | None = None) -> torch.Tensor:
        """The first ``out`` rows over the first ``cin`` inputs (or inputs ``cols``)."""
        return self.weight[:out, :cin] if cols is None else self.weight[:out, cols]

    def forward_sub(self, x: torch.Tensor, out: int, cols: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(x, self.weight_for(int(x.shape[1]), out, cols),
                        self.bias[:out] if self.bias is not None else None)


def shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``nas.blocks.ChannelShuffle`` as a function."""
    c, h, w = (int(d) for d in x.shape[1:])
    return x.reshape(-1, groups, c // groups, h, w).transpose(1, 2).reshape(-1, c, h, w)
