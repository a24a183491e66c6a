"""The measurable parts of a network (stem, each block, head) and their canonical lookup-table keys.

A key names everything that changes a part's latency on a fixed profile: block type, input and output
channels, mid width, kernel, stride, SE, activation, group count (OFA's tables lack it), whether the
first 1x1 is grouped, and the input size. Key building is plain string formatting on the architecture's
fields, so predicting a network never imports torch or builds a module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.arch import Architecture, Block, Head, Stem

IDENTITY_KEY = "identity"


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output size of a 'same'-padded conv (as in ``nas.cost``, which imports torch via ``nas.blocks``)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def block_key(cin: int, size: int, b: Block) -> str:
    return (f"{b.type.value}_i{cin}_o{b.out}_m{b.mid}_k{b.kernel}_s{b.stride}_se{int(b.se)}_"
            f"{b.activation.value}_g{b.groups}_gf{int(b.group_first_conv)}_hw{size}")


def stem_key(st: Stem, resolution: int) -> str:
    return f"stem_c{st.channels}_k{st.kernel}_s{st.stride}_{st.activation.value}_pool{int(st.pool)}_hw{resolution}"


def head_key(hd: Head, cin: int, size: int, num_classes: int) -> str:
    return f"head_i{cin}_c{hd.channels or 0}_h{hd.hidden or 0}_{hd.activation.value}_n{num_classes}_hw{size}"


def stem_out_size(st: Stem, resolution: int) -> int:
    size = conv_out(resolution, st.kernel, st.stride)
    return conv_out(size, 3, 2) if st.pool else size


def network_keys(arch: Architecture, resolution: int | None = None) -> list[str]:
    """Keys of stem, blocks and head in order: the whole prediction path apart from dict look-ups."""
    res = resolution or arch.resolution
    keys = [stem_key(arch.stem, res)]
    size, cin = stem_out_size(arch.stem, res), arch.stem.channels
    for stage in arch.stages:
        for b in stage:
            keys.append(block_key(cin, size, b))
            if b.stride == 2:
                size = (size - 1) // 2 + 1
            cin = b.out
    keys.append(head_key(arch.head, cin, size, arch.num_classes))
    return keys


@dataclass(frozen=True)
class Part:
    """One measurable unit, serialisable as JSON for the measuring subprocess.

    kind: ``network`` (whole architecture), ``block``, ``stem``, ``head`` or ``identity`` (an empty
    graph: the runtime's fixed per-call overhead, counted once per network instead of once per entry).
    """

    kind: str
    spec: dict[str, Any]

    @property
    def key(self) -> str:
        s = self.spec
        if self.kind == "block":
            return block_key(s["cin"], s["size"], Block.model_validate(s["block"]))
        if self.kind == "stem":
            return stem_key(Stem.model_validate(s["stem"]), s["resolution"])
        if self.kind == "head":
            return head_key(Head.model_validate(s["head"]), s["cin"], s["size"], s["num_classes"])
        if self.kind == "network":
            return f"network_{s['arch_hash']}_r{s['resolution']}"
        return IDENTITY_KEY

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.spec}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Part:
        data = dict(data)
        return cls(data.pop("kind"), data)


def part_params(part: Part) -> int:
    """Weights of a part (from the analytic cost model): a network streams them from memory on every
    inference, while a part timed alone keeps them in cache, which the calibration accounts for."""
    from nas.arch import Architecture, BlockType
    from nas.cost import block_cost, head_cost, stem_cost

    s = part.spec
    if part.kind == "block":
        return block_cost(s["cin"], s["size"], Block.model_validate(s["block"])).cost.params
    if part.kind == "stem":
        carrier = Architecture(stem=Stem.model_validate(s["stem"]), head=Head(),
                               stages=[[Block(type=BlockType.mbconv, out=8, mid=8)]])
        return stem_cost(carrier).cost.params
    if part.kind == "head":
        cin = s["cin"]
        # The carrier only holds the head: its stem is arbitrary (a head's input can be wider than any stem).
        carrier = Architecture(stem=Stem(channels=16), head=Head.model_validate(s["head"]),
                               stages=[[Block(type=BlockType.mbconv, out=cin, mid=cin)]], num_classes=s["num_classes"])
        return head_cost(carrier, (cin, s["size"], s["size"])).cost.params
    if part.kind == "network":
        from nas.arch import parse_architecture
        from nas.cost import estimate

        return estimate(parse_architecture(s["arch"])).total.params
    return 0


def block_part(cin: int, size: int, block: Block) -> Part:
    return Part("block", {"cin": cin, "size": size, "block": block.model_dump(mode="json")})


def stem_part(stem: Stem, resolution: int) -> Part:
    return Part("stem", {"stem": stem.model_dump(mode="json"), "resolution": resolution})


def head_part(head: Head, cin: int, size: int, num_classes: int) -> Part:
    return Part("head", {"head": head.model_dump(mode="json"), "cin": cin, "size": size,
                         "num_classes": num_classes})


def identity_part() -> Part:
    return Part("identity", {})


def network_part(arch: Architecture, resolution: int | None = None) -> Part:
    res = resolution or arch.resolution
    return Part("network", {"arch": arch.model_dump(mode="json"), "arch_hash": arch.hash, "resolution": res})


def network_parts(arch: Architecture, resolution: int | None = None) -> list[Part]:
    """Stem, every block and the head of ``arch`` as parts, in order (keys match ``network_keys``)."""
    res = resolution or arch.resolution
    parts = [stem_part(arch.stem, res)]
    size = stem_out_size(arch.stem, res)
    for _, cin, b in arch.blocks():
        parts.append(block_part(cin, size, b))
        if b.stride == 2:
            size = (size - 1) // 2 + 1
    parts.append(head_part(arch.head, arch.last_channels, size, arch.num_classes))
    return parts
