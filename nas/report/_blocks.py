"""The best architecture as a block table, in the published papers' form: identical consecutive blocks of a
stage become one row with a repeat count."""

from __future__ import annotations

from dataclasses import dataclass

from nas.arch import Architecture, Block, BlockType


@dataclass(frozen=True)
class BlockRow:
    stage: str
    type: str
    kernel: int | None
    expansion: str  # inner width over the block type's natural width, and the width itself
    se: bool
    activation: str
    groups: int | None
    channels: int
    stride: int | None
    repeats: int


def _expansion(block: Block, cin: int) -> str:
    """Relative to the natural width the spaces use: mbconv's input, half (V2) or a quarter (V1) of the output."""
    natural = {BlockType.mbconv: cin, BlockType.shufflev2: block.out / 2, BlockType.shufflev1: block.out / 4}
    ratio = block.mid / natural[block.type]
    return f"{ratio:.3g} ({block.mid})"


def block_rows(arch: Architecture) -> list[BlockRow]:
    """Stem, the stages' blocks (consecutive equal blocks merged into repeats), then the head."""
    st = arch.stem
    stem_type = "conv" + (" + max pool" if st.pool else "")
    rows = [BlockRow("stem", stem_type, st.kernel, "", False, st.activation.value, None, st.channels, st.stride, 1)]
    cin = st.channels
    for s, stage in enumerate(arch.stages):
        previous: Block | None = None
        for block in stage:
            row = BlockRow(f"s{s}", block.type.value, block.kernel, _expansion(block, cin), block.se,
                           block.activation.value, block.groups, block.out, block.stride, 1)
            if previous is not None and block == previous and rows[-1].expansion == row.expansion:
                rows[-1] = BlockRow(**{**rows[-1].__dict__, "repeats": rows[-1].repeats + 1})
            else:
                rows.append(row)
            previous, cin = block, block.out
    head = arch.head
    parts = [f"1x1 conv {head.channels}" if head.channels else None, "pool",
             f"linear {head.hidden}" if head.hidden else None, f"classifier {arch.num_classes}"]
    rows.append(BlockRow("head", ", ".join(p for p in parts if p), None, "", False, head.activation.value, None,
                         arch.num_classes, None, 1))
    return rows
