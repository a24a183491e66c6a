"""Import torchvision's MobileNetV3 weights into this project's reference networks (``nas arch import-weights``).

torchvision's ``mobilenet_v3_large`` / ``mobilenet_v3_small`` and the shipped references
``mobilenetv3-{large,small}-{1.0,0.75}`` are the same network layer for layer (widths, SE squeeze
widths, activations, residuals, BatchNorm eps 1e-3), so the weights map by renaming keys, nothing else:

    torchvision                      this project
    features.0.{0,1}.*               stem.0.{0,1}.*              stem conv, BN
    features.<i>.block.<j>.*         blocks.<i-1>.body.<j>.*     i = 1..N; j: expand, depthwise, SE (fc1, fc2), project
    features.<N+1>.{0,1}.*           head_conv.{0,1}.*           last 1x1 conv, BN
    classifier.0.*                   classifier.0.*              Linear to the hidden width
    classifier.3.*                   classifier.<last>.*         Linear to the classes

The class count comes from ``classifier.3.weight``. Every tensor of the file must land on a tensor of
the same shape and every tensor of the network must be filled, else the import fails naming the key;
nothing is guessed. Without an explicit architecture, the first shipped MobileNetV3 reference whose
shapes all match is taken.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.arch import Architecture, BlockType, load_architecture
from nas.errors import NotFoundError, WeightsError
from nas.paths import references_dir

if TYPE_CHECKING:
    from nas.builder import Network

MAPPING = "torchvision-mobilenetv3/1"
"""Names the key mapping above in provenance; bump it if the mapping ever changes."""
TORCHVISION_BN_EPS = 1e-3
_FEATURE = re.compile(r"^features\.(\d+)\.(.+)$")


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a ``torch.save(model.state_dict())`` file (a ``{"state_dict": ...}`` wrapper and
    DataParallel's ``module.`` prefixes are accepted). Loaded with ``weights_only``: never runs pickled code."""
    import torch

    if not path.is_file():
        raise NotFoundError("weights file", str(path))
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only refusals all raise different types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise WeightsError(str(path), f"not a state dict written by torch.save ({type(exc).__name__}: {first}); "
                                      "save one with torch.save(model.state_dict(), path)") from None
    if isinstance(blob, dict) and "architecture" in blob and "state_dict" in blob:
        raise WeightsError(str(path), "this is already one of this project's state files; use it directly")
    if isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict):
        blob = blob["state_dict"]
    if not isinstance(blob, dict) or not blob:
        raise WeightsError(str(path), f"expected a state dict (names to tensors), found {type(blob).__name__}")
    odd = next((k for k, v in blob.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if odd is not None:
        raise WeightsError(str(path), f"expected a state dict (names to tensors), but {odd!r} holds a "
                                      f"{type(blob[odd]).__name__}")
    return {k.removeprefix("module."): v for k, v in blob.items()}


def check_mappable(arch: Architecture, source: str = "architecture") -> None:
    """The network shapes torchvision's MobileNetV3 has: mbconv blocks without groups, a conv head and a
    hidden linear layer, BatchNorm eps 1e-3 (any other eps gives other outputs from the same weights)."""
    problems = [f"{path}: a {b.type.value} block with {b.groups} groups" for path, _, b in arch.blocks()
                if b.type is not BlockType.mbconv or b.groups != 1]
    if arch.stem.pool:
        problems.append("stem.pool: torchvision's MobileNetV3 has no stem pooling")
    if arch.head.channels is None or arch.head.hidden is None:
        problems.append("head: torchvision's MobileNetV3 has a 1x1 conv and a hidden linear layer")
    if arch.bn.eps != TORCHVISION_BN_EPS:
        problems.append(f"batchnorm.eps: {arch.bn.eps:g}, but torchvision's MobileNetV3 uses {TORCHVISION_BN_EPS:g}")
    if problems:
        raise WeightsError(source, f"not a torchvision MobileNetV3 layout: {problems[0]}")


def map_key(key: str, num_blocks: int, last_linear: int) -> str | None:
    """This project's name for a torchvision key (the table in the module docstring); None if unknown."""
    if key.startswith("classifier.0."):
        return key
    if key.startswith("classifier.3."):
        return f"classifier.{last_linear}." + key.removeprefix("classifier.3.")
    m = _FEATURE.match(key)
    if m is None:
        return None
    i, rest = int(m.group(1)), m.group(2)
    if i == 0:
        return f"stem.0.{rest}"
    if i == num_blocks + 1:
        return f"head_conv.{rest}"
    if 1 <= i <= num_blocks and rest.startswith("block."):
        return f"blocks.{i - 1}.body." + rest.removeprefix("block.")
    return None


def mapped_state(state: dict[str, Any], arch: Architecture, source: str) -> tuple[dict[str, Any], Network]:
    """``state`` renamed for ``arch`` and checked against its freshly built network, which is returned."""
    from nas.builder import build_model

    check_mappable(arch, source)
    model = build_model(arch)
    own = model.state_dict()
    last = len(model.classifier) - 1
    n = len(arch.blocks())
    mapped: dict[str, Any] = {}
    for key, value in state.items():
        ours = map_key(key, n, last)
        if ours is None or ours not in own:
            raise WeightsError(source, f"key {key!r} has no counterpart in {_name(arch)} "
                                       f"({n} blocks){f' (mapped to {ours!r})' if ours else ''}")
        if tuple(value.shape) != tuple(own[ours].shape):
            raise WeightsError(source, f"key {key!r} has shape {list(value.shape)}, but {ours!r} of {_name(arch)} "
                                       f"has {list(own[ours].shape)}")
        mapped[ours] = value
    missing = [k for k in own if k not in mapped]
    if missing:
        raise WeightsError(source, f"{len(missing)} tensor(s) of {_name(arch)} are not in the file, the first "
                                   f"{missing[0]!r}")
    return mapped, model


def import_torchvision(path: Path, arch: str | Architecture | None = None
                       ) -> tuple[Architecture, Network, dict[str, Any]]:
    """(architecture, network holding the weights in fp32, provenance) for a torchvision MobileNetV3 file.

    ``arch``: a reference name, architecture file or string, or a document; None: the first shipped
    MobileNetV3 reference the weights fit."""
    state = read_state_dict(path)
    head = state.get("classifier.3.weight")
    if head is None or head.dim() != 2:
        raise WeightsError(str(path), "key 'classifier.3.weight' (the last linear layer of torchvision's "
                                      "MobileNetV3) is missing: not a torchvision MobileNetV3 state dict")
    classes = int(head.shape[0])
    if arch is not None:
        name = arch if isinstance(arch, str) else arch.hash
        arch = (load_architecture(arch) if isinstance(arch, str) else arch).with_(num_classes=classes)
        mapped, model = mapped_state(state, arch, str(path))
    else:
        name, arch, mapped, model = _detect(state, classes, path)
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in mapped.items()})
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in state.values() if v.is_floating_point()})
    provenance = {"imported_from": "torchvision", "mapping": MAPPING, "file": str(path.resolve()),
                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "tensors": len(mapped),
                  "file_dtypes": dtypes, "architecture": name, "architecture_hash": arch.hash}
    return arch, model.eval(), provenance


def _detect(state: dict[str, Any], classes: int, path: Path) -> tuple[str, Architecture, dict[str, Any], Network]:
    names = sorted(p.stem for p in references_dir().glob("mobilenetv3-*.json"))
    reasons = []
    for name in names:
        arch = load_architecture(name).with_(num_classes=classes)
        try:
            mapped, model = mapped_state(state, arch, str(path))
        except WeightsError as exc:
            reasons.append(f"{name}: {exc.reason}")
            continue
        return name, arch, mapped, model
    raise WeightsError(str(path), "the weights match no MobileNetV3 reference (give --arch to name one); "
                                  + "; ".join(reasons[:2]))


def _name(arch: Architecture) -> str:
    return f"{arch.space or 'the network'} {arch.hash}"
