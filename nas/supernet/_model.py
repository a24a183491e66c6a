"""The weight-sharing supernet of an mbconv space: every architecture of the space is a forward path.

A subnet is named by the project's canonical document (``nas.arch.Architecture``), so whatever a
strategy proposes can be run with inherited weights, and ``extract`` turns it into the builder's static
network with the same outputs. Layer sizes are those of the space's largest member; each block position
keeps its stride, and its largest kernel, width and SE, and its layers serve every smaller choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from nas.arch import Architecture, Block, BlockType
from nas.builder import init_weights
from nas.errors import ArchitectureError, SpaceError
from nas.supernet._layers import (
    ElasticBN,
    ElasticConv,
    ElasticDepthwise,
    ElasticLinear,
    ElasticSE,
    act_module,
    shuffle,
)
from nas.supernet._sampling import largest_architecture

if TYPE_CHECKING:
    from nas.spaces import SearchSpace


class SuperBlock(nn.Module):
    """An mbconv position: expand 1x1 (absent when the space never expands here), depthwise, SE, project.

    The 1x1 convs (and their BN) have one set of weights per group count. Sharing one dense weight and
    taking its block diagonal was measured to fail: after a grouped expansion the channel shuffle feeds
    each depthwise channel a different expanded channel for every group count, so a supernet trained that
    way scored 11-21% one-shot (digits, 10 classes) on subnets whose only change from the 99% largest was
    the group count. Kernel, width, depth, SE and activation share weights; the depthwise conv and SE
    are shared across group counts too."""

    def __init__(self, *, cin: int, out: int, mid: int, kernels: list[int], stride: int, se: bool,
                 groups: list[int]) -> None:
        super().__init__()
        self.stride = stride
        keys = [str(g) for g in sorted(groups)]
        self.expand = nn.ModuleDict({g: ElasticConv(cin, mid) for g in keys}) if mid != cin else None
        self.expand_bn = nn.ModuleDict({g: ElasticBN(mid) for g in keys}) if mid != cin else None
        self.dw = ElasticDepthwise(mid, kernels, stride)
        self.dw_bn = ElasticBN(mid)
        self.se = ElasticSE(mid) if se else None
        self.project = nn.ModuleDict({g: ElasticConv(mid, out) for g in keys})
        self.project_bn = nn.ModuleDict({g: ElasticBN(out) for g in keys})

    @property
    def out_channels(self) -> int:
        project = next(iter(self.project.values()))
        assert isinstance(project, ElasticConv)
        return project.out_channels

    def parts(self, groups: int) -> tuple[ElasticConv | None, ElasticBN | None, ElasticConv, ElasticBN]:
        """(expand, expand BN, project, project BN) for ``groups``."""
        g = str(groups)
        if g not in self.project:
            raise ValueError(f"groups {groups} is not one of this block's {list(self.project)}")
        expand = self.expand[g] if self.expand is not None else None
        expand_bn = self.expand_bn[g] if self.expand_bn is not None else None
        project, project_bn = self.project[g], self.project_bn[g]
        assert isinstance(project, ElasticConv) and isinstance(project_bn, ElasticBN)
        assert expand is None or isinstance(expand, ElasticConv)
        assert expand_bn is None or isinstance(expand_bn, ElasticBN)
        return expand, expand_bn, project, project_bn

    def forward_sub(self, x: torch.Tensor, block: Block) -> torch.Tensor:
        cin, act, g = int(x.shape[1]), act_module(block.activation), block.groups
        expand, expand_bn, project, project_bn = self.parts(g)
        h = x
        if block.mid != cin:
            assert expand is not None and expand_bn is not None
            h = act(expand_bn(expand.forward_sub(x, block.mid, g)))
            if g > 1:
                h = shuffle(h, g)
        h = act(self.dw_bn(self.dw.forward_sub(h, block.kernel)))
        if block.se:
            assert self.se is not None
            h = self.se(h)
        h = project_bn(project.forward_sub(h, block.out, g))
        return x + h if block.stride == 1 and cin == block.out else h


class Supernet(nn.Module):
    """Shared weights for every member of ``space`` (mbconv spaces) with ``num_classes`` outputs."""

    def __init__(self, space: SearchSpace, num_classes: int) -> None:
        super().__init__()
        d = space.definition
        for s, stage_def in enumerate(d.stages):
            if stage_def.block != [BlockType.mbconv]:
                raise SpaceError(space.source, f"stages.{s}.block",
                                 "the supernet supports mbconv stages only (MobileNetV2/V3 spaces)")
        self.space, self.num_classes = space, num_classes
        big = self.largest = largest_architecture(space, num_classes)
        st = big.stem
        self.stem = ElasticConv(3, st.channels, st.kernel, st.stride)
        self.stem_bn = ElasticBN(st.channels)
        self.stem_pool = nn.MaxPool2d(3, 2, 1) if st.pool else None
        stages: list[nn.ModuleList] = []
        cin = st.channels
        for stage, stage_space in zip(big.stages, d.stages, strict=True):
            blocks = []
            for block in stage:
                can_expand = any(e != 1 for e in stage_space.expansion)
                blocks.append(SuperBlock(cin=cin, out=block.out, mid=block.mid if can_expand else cin,
                                         kernels=list(stage_space.kernel), stride=block.stride,
                                         se=True in stage_space.se, groups=list(stage_space.groups)))
                cin = block.out
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        hd = big.head
        self.head_conv = ElasticConv(cin, hd.channels) if hd.channels else None
        self.head_bn = ElasticBN(hd.channels) if hd.channels else None
        width = hd.channels or cin
        self.hidden = ElasticLinear(width, hd.hidden) if hd.hidden else None
        self.classifier = ElasticLinear(hd.hidden or width, num_classes)
        self.dropout = hd.dropout
        init_weights(self)

    def positions(self) -> list[list[SuperBlock]]:
        """The block positions, stage by stage (typed view of ``self.stages``)."""
        return [[b for b in stage if isinstance(b, SuperBlock)] for stage in self.stages
                if isinstance(stage, nn.ModuleList)]

    # -- membership ----------------------------------------------------------------------
    def check(self, arch: Architecture) -> None:
        """Raise ``ArchitectureError`` unless ``arch`` is a path through this supernet."""
        from nas.spaces import check_member

        where = f"supernet of {self.space.name}"
        if arch.num_classes != self.num_classes:
            raise ArchitectureError("num_classes", f"{arch.num_classes} != the supernet's {self.num_classes}", where)
        check_member(self.space, arch)
        big = self.largest
        if arch.stem.channels > big.stem.channels:
            raise ArchitectureError("stem.channels", f"wider than the supernet's {big.stem.channels}", where)
        for s, (stage, blocks) in enumerate(zip(arch.stages, self.positions(), strict=True)):
            for b, block in enumerate(stage):
                sup = blocks[b]
                path = f"stages[{s}][{b}]"
                if block.out > sup.out_channels or block.mid > sup.dw.in_channels:
                    raise ArchitectureError(path, "wider than the supernet's block", where)
        hd = arch.head
        if (hd.channels or 0) > (big.head.channels or 0) or (hd.hidden or 0) > (big.head.hidden or 0):
            raise ArchitectureError("head", "wider than the supernet's head", where)

    # -- forward -------------------------------------------------------------------------
    def features(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        st = arch.stem
        x = act_module(st.activation)(self.stem_bn(self.stem.forward_sub(x, st.channels)))
        if self.stem_pool is not None:
            x = self.stem_pool(x)
        for stage, blocks in zip(arch.stages, self.positions(), strict=True):
            for block, sup in zip(stage, blocks, strict=False):
                x = sup.forward_sub(x, block)
        hd = arch.head
        if hd.channels:
            assert self.head_conv is not None and self.head_bn is not None
            x = act_module(hd.activation)(self.head_bn(self.head_conv.forward_sub(x, hd.channels)))
        return x

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """Logits of subnet ``arch`` (checked with :meth:`check` first: a wrong document fails clearly)."""
        self.check(arch)
        x = F.adaptive_avg_pool2d(self.features(x, arch), 1).flatten(1)
        hd = arch.head
        if hd.hidden:
            assert self.hidden is not None
            x = act_module(hd.activation)(self.hidden.forward_sub(x, hd.hidden))
        if self.dropout:
            x = F.dropout(x, self.dropout, self.training)
        return self.classifier.forward_sub(x, self.num_classes)

    def no_decay_parameters(self) -> list[nn.Parameter]:
        """BN affine, biases and the kernel transforms: trained without weight decay."""
        return [p for name, p in self.named_parameters() if p.ndim <= 1 or ".transforms." in name]
