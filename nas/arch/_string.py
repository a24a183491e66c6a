"""Compact one-line form of an architecture, in the spirit of timm's block strings.

    mobilenetv3-small@r224_n1000|st_c16_k3_s2_hs|mb_c16_m16_k3_s2_se_re;mb_c24_m72_k3_s2_re,...|hd_c576_h1024_hs_d0.2

Stages are separated by ``;``, blocks by ``,``. Tokens: c=out channels, m=mid, k=kernel, s=stride,
g=groups, gf0=dense first 1x1, se, pool, h=hidden, d=dropout, and the activations re/r6/hs; in the
header r=resolution, n=classes and, only when they are not PyTorch's defaults, bne/bnm=BatchNorm eps
and momentum (``r224_n1000_bne0.001_bnm0.01`` for MobileNetV3).
Decoding then encoding gives the same text; unknown tokens are errors naming the token.
"""

from __future__ import annotations

from typing import Any

from nas.arch._model import Activation, Architecture, BlockType, parse_architecture
from nas.errors import ArchitectureError

_ACT = {Activation.relu: "re", Activation.relu6: "r6", Activation.hswish: "hs"}
_ACT_BACK = {v: k.value for k, v in _ACT.items()}
_TYPE = {BlockType.mbconv: "mb", BlockType.shufflev1: "sv1", BlockType.shufflev2: "sv2"}
_TYPE_BACK = {v: k.value for k, v in _TYPE.items()}
_FLOATS = {"dropout", "eps", "momentum"}


def to_string(arch: Architecture) -> str:
    head = f"{arch.space}@" if arch.space else ""
    bn = arch.batchnorm
    bn_tokens = f"_bne{bn.eps!r}_bnm{bn.momentum!r}" if bn else ""
    parts = [f"{head}r{arch.resolution}_n{arch.num_classes}{bn_tokens}"]
    st = arch.stem
    parts.append("_".join(["st", f"c{st.channels}", f"k{st.kernel}", f"s{st.stride}", _ACT[st.activation]]
                          + (["pool"] if st.pool else [])))
    stages = []
    for stage in arch.stages:
        tokens = []
        for b in stage:
            t = [_TYPE[b.type], f"c{b.out}", f"m{b.mid}", f"k{b.kernel}", f"s{b.stride}"]
            t += [f"g{b.groups}"] if b.groups != 1 else []
            t += ["gf0"] if not b.group_first_conv else []
            t += ["se"] if b.se else []
            tokens.append("_".join(t + [_ACT[b.activation]]))
        stages.append(",".join(tokens))
    parts.append(";".join(stages))
    hd = arch.head
    t = ["hd"] + ([f"c{hd.channels}"] if hd.channels else []) + ([f"h{hd.hidden}"] if hd.hidden else [])
    t += [_ACT[hd.activation]] + ([f"d{hd.dropout:g}"] if hd.dropout else [])
    parts.append("_".join(t))
    return "|".join(parts)


def from_string(text: str) -> Architecture:
    sections = text.strip().split("|")
    if len(sections) != 4:
        raise ArchitectureError("(string)", f"expected 4 '|'-separated sections, got {len(sections)}")
    space, _, top = sections[0].rpartition("@")
    doc: dict[str, Any] = {"space": space or None}
    header: dict[str, Any] = {}
    for tok in top.split("_"):
        _put(header, tok, {"r": "resolution", "n": "num_classes", "bne": "eps", "bnm": "momentum"}, "header")
    bn = {k: header.pop(k) for k in ("eps", "momentum") if k in header}
    doc.update(header, **({"batchnorm": bn} if bn else {}))
    doc["stem"] = _tokens(sections[1], "st", {"c": "channels", "k": "kernel", "s": "stride"})
    doc["stages"] = [
        [_block(tok) for tok in stage.split(",")] for stage in sections[2].split(";")
    ]
    doc["head"] = _tokens(sections[3], "hd", {"c": "channels", "h": "hidden", "d": "dropout"})
    return parse_architecture(doc, source="(string)")


def _block(token: str) -> dict[str, Any]:
    kind = token.split("_", 1)[0]
    if kind not in _TYPE_BACK:
        raise ArchitectureError("(string)", f"unknown block type {kind!r} in {token!r}")
    fields = _tokens(token, kind, {"c": "out", "m": "mid", "k": "kernel", "s": "stride", "g": "groups"})
    fields["type"] = _TYPE_BACK[kind]
    return fields


def _tokens(text: str, prefix: str, numeric: dict[str, str]) -> dict[str, Any]:
    tokens = text.split("_")
    if tokens[0] != prefix:
        raise ArchitectureError("(string)", f"section {text!r} must start with {prefix!r}")
    out: dict[str, Any] = {}
    for tok in tokens[1:]:
        if tok in _ACT_BACK:
            out["activation"] = _ACT_BACK[tok]
        elif tok in ("se", "pool"):
            out[tok] = True
        elif tok == "gf0":
            out["group_first_conv"] = False
        else:
            _put(out, tok, numeric, text)
    return out


def _put(out: dict[str, Any], tok: str, numeric: dict[str, str], where: str) -> None:
    key = next((k for k in sorted(numeric, key=len, reverse=True) if tok.startswith(k)), "")
    value = tok[len(key):]
    if not key or not value:
        raise ArchitectureError("(string)", f"unknown token {tok!r} in {where!r}")
    try:
        out[numeric[key]] = float(value) if numeric[key] in _FLOATS else int(value)
    except ValueError:
        raise ArchitectureError("(string)", f"token {tok!r} in {where!r} needs a number") from None
