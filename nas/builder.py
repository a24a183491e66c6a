"""Architecture document -> ``torch.nn.Module``.

Owns the cross-block concerns (channel threading, stem, head, weight init, BatchNorm settings); the
blocks themselves live in ``nas.blocks``. Builds for any resolution >= 32 and any class count.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.arch import Architecture, BatchNorm, BlockType
from nas.blocks import ConvBNAct, MBConv, ShuffleV1Unit, ShuffleV2Unit, activation

_BLOCKS: dict[BlockType, type[nn.Module]] = {
    BlockType.mbconv: MBConv,
    BlockType.shufflev1: ShuffleV1Unit,
    BlockType.shufflev2: ShuffleV2Unit,
}


class Network(nn.Module):
    """stem -> blocks -> head. ``blocks`` is flat so NetAdapt can address a layer by index."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        st = arch.stem
        stem: list[nn.Module] = [ConvBNAct(3, st.channels, kernel=st.kernel, stride=st.stride, act=st.activation)]
        if st.pool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        self.blocks = nn.Sequential(*(build_block(cin, block) for _, cin, block in arch.blocks()))
        hd = arch.head
        self.head_conv = (
            ConvBNAct(arch.last_channels, hd.channels, act=hd.activation) if hd.channels else nn.Identity()
        )
        width = hd.channels or arch.last_channels
        classifier: list[nn.Module] = []
        if hd.hidden:
            classifier += [nn.Linear(width, hd.hidden), activation(hd.activation)]
            width = hd.hidden
        if hd.dropout:
            classifier.append(nn.Dropout(hd.dropout))
        classifier.append(nn.Linear(width, arch.num_classes))
        self.classifier = nn.Sequential(*classifier)
        init_weights(self)
        apply_batchnorm(self, arch.bn)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_conv(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


def build_block(cin: int, block: object) -> nn.Module:
    from nas.arch import Block

    assert isinstance(block, Block)
    return _BLOCKS[block.type](
        cin=cin, out=block.out, mid=block.mid, kernel=block.kernel, stride=block.stride, se=block.se,
        act=block.activation, groups=block.groups, group_first_conv=block.group_first_conv,
    )


def init_weights(module: nn.Module) -> None:
    """torchvision's MobileNet initialisation: He (fan-out) convs, unit BN, small normal linears."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def output_layer(arch: Architecture) -> str:
    """State-dict prefix of the network's last Linear, the one sized by ``num_classes``
    (``classifier`` holds [Linear, act] for a hidden layer, then Dropout if any, then this Linear)."""
    return f"classifier.{(2 if arch.head.hidden else 0) + (1 if arch.head.dropout else 0)}."


def apply_batchnorm(module: nn.Module, bn: BatchNorm) -> None:
    """Give every BN layer the architecture's eps and momentum. Set here, once, rather than threaded
    through every block's arguments: it is a property of the whole network (as in torchvision, whose
    MobileNetV3 passes one ``norm_layer`` partial to every block)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps, m.momentum = bn.eps, bn.momentum


def build_model(arch: Architecture) -> Network:
    return Network(arch)
