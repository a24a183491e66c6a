"""The weight-sharing supernet of an mbconv space: every architecture of the space is a forward path.

A subnet is named by the project's canonical document (``nas.arch.Architecture``), so whatever a
strategy proposes can be run with inherited weights, and ``extract`` turns it into the builder's static
network with the same outputs. Layer sizes are those of the space's largest member; each block position
keeps its stride, and its largest kernel, width and SE, and its layers serve every smaller choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from nas.arch import Architecture, Block, BlockType
from nas.builder import apply_batchnorm, init_weights
from nas.errors import ArchitectureError, SpaceError
from nas.supernet._groups import after_shuffle, expanded_channels, stream_channels
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


class BlockChannels(NamedTuple):
    """Identity lists (static position -> supernet channel; None: the first channels in order)."""

    stream_in: torch.Tensor | None
    expanded: torch.Tensor | None  # in the expansion's output order
    shuffled: torch.Tensor | None  # the same after the channel shuffle: what the projection reads
    stream_out: torch.Tensor | None


class GroupPath(nn.Module):
    """One group count's layers of a block position: expand 1x1, depthwise, SE, project 1x1 (with BN)."""

    def __init__(self, *, cin: int, out: int, mid: int, kernels: list[int], stride: int, se: bool) -> None:
        super().__init__()
        self.expand = ElasticConv(cin, mid) if mid != cin else None
        self.expand_bn = ElasticBN(mid) if mid != cin else None
        self.dw = ElasticDepthwise(mid, kernels, stride)
        self.dw_bn = ElasticBN(mid)
        self.se = ElasticSE(mid) if se else None
        self.project = ElasticConv(mid, out)
        self.project_bn = ElasticBN(out)


class SuperBlock(nn.Module):
    """An mbconv position: one :class:`GroupPath` per group count the space allows here.

    Kernel, expansion, width, SE and activation share weights within a path; group counts do not, unless
    ``shared`` (one path serves every count through block-diagonal weights). The dense path is the one
    sorted by importance (``_sort``). Every channel, expanded or between blocks, keeps its group and its
    weights whatever the expansion and widths (``_groups``; ``layout`` is the space's group counts)."""

    def __init__(self, *, cin: int, out: int, mid: int, kernels: list[int], stride: int, se: bool,
                 groups: list[int], layout: tuple[int, ...] = (1,), shared: bool = False) -> None:
        super().__init__()
        self.stride, self.groups, self.layout = stride, sorted(groups), layout
        names = ["shared"] if shared else [str(g) for g in self.groups]
        self.paths = nn.ModuleDict({name: GroupPath(cin=cin, out=out, mid=mid, kernels=kernels, stride=stride, se=se)
                                    for name in names})

    def path(self, groups: int) -> GroupPath:
        if groups not in self.groups:
            raise ValueError(f"groups {groups} is not one of this block's {self.groups}")
        found = self.paths["shared" if "shared" in self.paths else str(groups)]
        assert isinstance(found, GroupPath)
        return found

    def all_paths(self) -> list[tuple[int, GroupPath]]:
        return [(g, self.path(g)) for g in self.groups]

    @property
    def out_channels(self) -> int:
        return self.all_paths()[0][1].project.out_channels

    @property
    def mid_channels(self) -> int:
        return self.all_paths()[0][1].dw.in_channels

    def channels(self, block: Block, cin: int, device: torch.device) -> BlockChannels:
        """The supernet channels of ``block``'s tensors in the static network's order (``_groups``)."""
        stream_in = stream_channels(cin, self.layout, device)
        stream_out = stream_channels(block.out, self.layout, device)
        if block.mid == cin:  # no expansion, no shuffle: the depthwise runs on the block's input channels
            return BlockChannels(stream_in, stream_in, stream_in, stream_out)
        if block.groups == 1:  # dense: the expanded channels are a prefix (sorted by importance)
            return BlockChannels(stream_in, None, None, stream_out)
        ids = expanded_channels(block.mid, block.groups, self.path(block.groups).dw.in_channels, device)
        return BlockChannels(stream_in, ids, after_shuffle(ids, block.groups), stream_out)

    def forward_sub(self, x: torch.Tensor, block: Block,
                    distill: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``block``'s output; with ``distill`` (training), a grouped path also appends the mean squared
        distance of its output to the dense path's on the same input (detached): the feature-level
        distillation that keeps every path's output in the dense path's channel basis, so that any block
        can follow any other (``group_distill`` in the supernet spec)."""
        h = self._branch(x, block)
        dense = self.groups[0]
        if distill is not None and block.groups != dense:
            with torch.no_grad():
                target = self._branch(x, block.model_copy(update={"groups": dense}))
            distill.append(F.mse_loss(h, target))
        return x + h if block.stride == 1 and int(x.shape[1]) == block.out else h

    def _branch(self, x: torch.Tensor, block: Block) -> torch.Tensor:
        """The block's layers without its residual connection."""
        cin, act, g = int(x.shape[1]), act_module(block.activation), block.groups
        p = self.path(g)
        ch = self.channels(block, cin, x.device)
        h = x
        if block.mid != cin:
            assert p.expand is not None and p.expand_bn is not None
            h = act(p.expand_bn(p.expand.forward_sub(x, block.mid, g, rows=ch.expanded, cols=ch.stream_in),
                                ch.expanded))
        h = act(p.dw_bn(p.dw.forward_sub(h, block.kernel, ch.expanded), ch.expanded))
        if block.se:
            assert p.se is not None
            h = p.se(h, ch.expanded)
        if g > 1 and block.mid != cin:
            h = shuffle(h, g)
        return p.project_bn(p.project.forward_sub(h, block.out, g, rows=ch.stream_out, cols=ch.shuffled),
                            ch.stream_out)


class Supernet(nn.Module):
    """Shared weights for every member of ``space`` (mbconv spaces) with ``num_classes`` outputs."""

    def __init__(self, space: SearchSpace, num_classes: int, *, shared_groups: bool = False) -> None:
        super().__init__()
        self.shared_groups = shared_groups
        d = space.definition
        for s, stage_def in enumerate(d.stages):
            if stage_def.block != [BlockType.mbconv]:
                raise SpaceError(space.source, f"stages.{s}.block",
                                 "the supernet supports mbconv stages only (MobileNetV2/V3 spaces)")
        self.space, self.num_classes = space, num_classes
        big = self.largest = largest_architecture(space, num_classes)
        self.layout = tuple(sorted({g for stage in d.stages for g in stage.groups}))
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
                                         se=True in stage_space.se, groups=list(stage_space.groups),
                                         layout=self.layout, shared=shared_groups))
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
        apply_batchnorm(self, big.bn)  # the space's eps and momentum, as every extracted subnet has them

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
                if block.out > sup.out_channels or block.mid > sup.mid_channels:
                    raise ArchitectureError(path, "wider than the supernet's block", where)
        hd = arch.head
        if (hd.channels or 0) > (big.head.channels or 0) or (hd.hidden or 0) > (big.head.hidden or 0):
            raise ArchitectureError("head", "wider than the supernet's head", where)

    # -- forward -------------------------------------------------------------------------
    def stream(self, k: int, device: torch.device) -> torch.Tensor | None:
        """Supernet channel of each position of a ``k``-channel tensor between blocks (``_groups``)."""
        return stream_channels(k, self.layout, device)

    def features(self, x: torch.Tensor, arch: Architecture,
                 distill: list[torch.Tensor] | None = None) -> torch.Tensor:
        st = arch.stem
        ids = self.stream(st.channels, x.device)
        x = act_module(st.activation)(self.stem_bn(self.stem.forward_sub(x, st.channels, rows=ids), ids))
        if self.stem_pool is not None:
            x = self.stem_pool(x)
        for stage, blocks in zip(arch.stages, self.positions(), strict=True):
            for block, sup in zip(stage, blocks, strict=False):
                x = sup.forward_sub(x, block, distill)
        hd = arch.head
        if hd.channels:
            assert self.head_conv is not None and self.head_bn is not None
            x = act_module(hd.activation)(self.head_bn(
                self.head_conv.forward_sub(x, hd.channels, cols=self.stream(int(x.shape[1]), x.device))))
        return x

    def forward(self, x: torch.Tensor, arch: Architecture, *,
                distill: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits of subnet ``arch`` (checked with :meth:`check` first: a wrong document fails clearly);
        ``distill`` collects each grouped block's distance to its dense path (:meth:`SuperBlock.forward_sub`)."""
        self.check(arch)
        x = F.adaptive_avg_pool2d(self.features(x, arch, distill), 1).flatten(1)
        hd = arch.head
        cols = None if hd.channels else self.stream(int(x.shape[1]), x.device)  # no head conv: stream order
        if hd.hidden:
            assert self.hidden is not None
            x = act_module(hd.activation)(self.hidden.forward_sub(x, hd.hidden, cols))
            cols = None
        if self.dropout:
            x = F.dropout(x, self.dropout, self.training)
        return self.classifier.forward_sub(x, self.num_classes, cols)

    def no_decay_parameters(self) -> list[nn.Parameter]:
        """BN affine, biases and the kernel transforms: trained without weight decay."""
        return [p for name, p in self.named_parameters() if p.ndim <= 1 or ".transforms." in name]
