"""Building blocks as plain ``nn.Module``s with typed keyword arguments and no parsing.

The builder (``nas.builder``) decodes architecture documents into these; the cost model
(``nas.cost``) counts the same layers analytically without building them.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.arch import Activation
from nas.channels import se_channels


def activation(name: Activation | str) -> nn.Module:
    act = Activation(name)
    if act is Activation.relu:
        return nn.ReLU(inplace=True)
    if act is Activation.relu6:
        return nn.ReLU6(inplace=True)
    return nn.Hardswish(inplace=True)


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, *, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: Activation | str | None = None) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """MobileNetV3's SE: pool, 1x1 reduce + ReLU, 1x1 expand, hard-sigmoid gate."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.relu(self.fc1(s))))


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle. Sizes are taken as Python ints and the batch as -1, so the ONNX
    export holds two Reshapes with constant shapes (what the latency table's part graphs time) rather
    than a Shape/Gather/Unsqueeze/Concat chain per shuffle: that chain kept its dynamic batch axis alive,
    cost ONNX Runtime 3-10% of a whole network at 128x128 and was invisible to the table."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = (int(d) for d in x.shape[1:])
        return x.reshape(-1, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(-1, c, h, w)


def _maybe_shuffle(groups: int) -> list[nn.Module]:
    return [ChannelShuffle(groups)] if groups > 1 else []


class MBConv(nn.Module):
    """MobileNetV2/V3 inverted residual; grouped 1x1 convs get a channel shuffle after the expansion."""

    def __init__(self, *, cin: int, out: int, mid: int, kernel: int, stride: int, se: bool,
                 act: Activation | str, groups: int = 1, group_first_conv: bool = True) -> None:
        super().__init__()
        self.use_residual = stride == 1 and cin == out
        layers: list[nn.Module] = []
        if mid != cin:
            g1 = groups if group_first_conv else 1
            layers += [ConvBNAct(cin, mid, groups=g1, act=act), *_maybe_shuffle(groups)]
        layers.append(ConvBNAct(mid, mid, kernel=kernel, stride=stride, groups=mid, act=act))
        if se:
            layers.append(SqueezeExcite(mid, se_channels(mid)))
        layers.append(ConvBNAct(mid, out, groups=groups, act=None))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_residual else y


class ShuffleV1Unit(nn.Module):
    """ShuffleNet V1: GConv1x1 -> shuffle -> DW -> GConv1x1; add (stride 1) or concat with avg-pool (stride 2)."""

    def __init__(self, *, cin: int, out: int, mid: int, kernel: int, stride: int, se: bool,
                 act: Activation | str, groups: int, group_first_conv: bool = True) -> None:
        super().__init__()
        self.stride = stride
        branch_out = out - cin if stride == 2 else out
        layers: list[nn.Module] = [
            ConvBNAct(cin, mid, groups=groups if group_first_conv else 1, act=act),
            *_maybe_shuffle(groups),
            ConvBNAct(mid, mid, kernel=kernel, stride=stride, groups=mid, act=None),
            ConvBNAct(mid, branch_out, groups=groups, act=None),
        ]
        if se:
            layers.append(SqueezeExcite(branch_out, se_channels(branch_out)))
        self.branch = nn.Sequential(*layers)
        self.act = activation(act)
        self.pool = nn.AvgPool2d(3, 2, 1) if stride == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x)
        if self.pool is None:
            return self.act(x + y)
        return torch.cat((self.pool(x), self.act(y)), 1)


class ShuffleV2Unit(nn.Module):
    """ShuffleNet V2: channel split (stride 1) or two branches (stride 2), concat, shuffle with 2 groups."""

    def __init__(self, *, cin: int, out: int, mid: int, kernel: int, stride: int, se: bool,
                 act: Activation | str, groups: int = 1, group_first_conv: bool = True) -> None:
        super().__init__()
        self.stride = stride
        half = out // 2
        branch_in = cin if stride == 2 else cin // 2
        self.branch1 = (
            nn.Sequential(
                ConvBNAct(cin, cin, kernel=kernel, stride=2, groups=cin, act=None),
                ConvBNAct(cin, half, act=act),
            )
            if stride == 2 else None
        )
        layers: list[nn.Module] = [
            ConvBNAct(branch_in, mid, groups=groups if group_first_conv else 1, act=act),
            *_maybe_shuffle(groups),
            ConvBNAct(mid, mid, kernel=kernel, stride=stride, groups=mid, act=None),
            ConvBNAct(mid, half, groups=groups, act=act),
        ]
        if se:
            layers.append(SqueezeExcite(half, se_channels(half)))
        self.branch2 = nn.Sequential(*layers)
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            half = int(x.shape[1]) // 2  # a constant split in ONNX (chunk exports a Shape/Slice chain)
            x1, x2 = x.split([half, half], dim=1)
            y = torch.cat((x1, self.branch2(x2)), 1)
        else:
            y = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return self.shuffle(y)
