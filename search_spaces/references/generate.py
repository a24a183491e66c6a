"""Regenerate the shipped reference architecture files from the published layer tables.

    python search_spaces/references/generate.py

Tables: shared/REFERENCES.md (torchvision's MobileNetV2/V3 and ShuffleNetV2, megvii's ShuffleNetV1).
The JSON files are the source of truth at run time; tests check the figures they produce.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.arch import parse_architecture
from nas.channels import make_divisible

HERE = Path(__file__).parent

# in, kernel, expanded, out, se, activation, stride (torchvision mobilenetv3.py)
V3_LARGE = [
    (16, 3, 16, 16, False, "relu", 1), (16, 3, 64, 24, False, "relu", 2), (24, 3, 72, 24, False, "relu", 1),
    (24, 5, 72, 40, True, "relu", 2), (40, 5, 120, 40, True, "relu", 1), (40, 5, 120, 40, True, "relu", 1),
    (40, 3, 240, 80, False, "hswish", 2), (80, 3, 200, 80, False, "hswish", 1),
    (80, 3, 184, 80, False, "hswish", 1), (80, 3, 184, 80, False, "hswish", 1),
    (80, 3, 480, 112, True, "hswish", 1), (112, 3, 672, 112, True, "hswish", 1),
    (112, 5, 672, 160, True, "hswish", 2), (160, 5, 960, 160, True, "hswish", 1),
    (160, 5, 960, 160, True, "hswish", 1),
]
V3_SMALL = [
    (16, 3, 16, 16, True, "relu", 2), (16, 3, 72, 24, False, "relu", 2), (24, 3, 88, 24, False, "relu", 1),
    (24, 5, 96, 40, True, "hswish", 2), (40, 5, 240, 40, True, "hswish", 1),
    (40, 5, 240, 40, True, "hswish", 1), (40, 5, 120, 48, True, "hswish", 1),
    (48, 5, 144, 48, True, "hswish", 1), (48, 5, 288, 96, True, "hswish", 2),
    (96, 5, 576, 96, True, "hswish", 1), (96, 5, 576, 96, True, "hswish", 1),
]


def _stages_by_out(blocks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group consecutive blocks into stages: a new stage starts when the output width changes."""
    stages: list[list[dict[str, Any]]] = []
    for b in blocks:
        if not stages or stages[-1][-1]["out"] != b["out"] or b["stride"] == 2:
            stages.append([])
        stages[-1].append(b)
    return stages


def mobilenetv3(name: str, table: list[tuple], width: float, hidden: int) -> dict[str, Any]:
    def scale(c: int) -> int:
        return make_divisible(c * width, 8)

    blocks = [
        {"type": "mbconv", "out": scale(out), "mid": scale(exp), "kernel": k, "stride": s, "se": se,
         "activation": act}
        for (_, k, exp, out, se, act, s) in table
    ]
    last = blocks[-1]["out"]
    return {
        "space": name, "resolution": 224, "num_classes": 1000,
        "stem": {"channels": scale(16), "kernel": 3, "stride": 2, "activation": "hswish"},
        "stages": _stages_by_out(blocks),
        "head": {"channels": 6 * last, "hidden": scale(hidden), "activation": "hswish", "dropout": 0.2},
        "batchnorm": {"eps": 0.001, "momentum": 0.01},  # torchvision: partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
    }


def mobilenetv2(width: float) -> dict[str, Any]:
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
    cin = make_divisible(32 * width, 8)
    stages = []
    for t, c, n, s in settings:
        out = make_divisible(c * width, 8)
        stage = []
        for i in range(n):
            stage.append({"type": "mbconv", "out": out, "mid": int(round(cin * t)), "kernel": 3,
                          "stride": s if i == 0 else 1, "activation": "relu6"})
            cin = out
        stages.append(stage)
    return {
        "space": "mobilenetv2", "resolution": 224, "num_classes": 1000,
        "stem": {"channels": make_divisible(32 * width, 8), "kernel": 3, "stride": 2, "activation": "relu6"},
        "stages": stages,
        "head": {"channels": make_divisible(1280 * max(1.0, width), 8), "activation": "relu6", "dropout": 0.2},
    }


def shufflenetv2(channels: list[int]) -> dict[str, Any]:
    stages = []
    for repeats, out in zip([4, 8, 4], channels[1:4], strict=True):
        stages.append([{"type": "shufflev2", "out": out, "mid": out // 2, "kernel": 3,
                        "stride": 2 if i == 0 else 1, "activation": "relu"} for i in range(repeats)])
    return {
        "space": "shufflenet", "resolution": 224, "num_classes": 1000,
        "stem": {"channels": channels[0], "kernel": 3, "stride": 2, "activation": "relu", "pool": True},
        "stages": stages,
        "head": {"channels": channels[4], "activation": "relu"},
    }


def shufflenetv1(groups: int, widths: list[int]) -> dict[str, Any]:
    stages = []
    for s, (repeats, out) in enumerate(zip([4, 8, 4], widths, strict=True)):
        stages.append([{"type": "shufflev1", "out": out, "mid": out // 4, "kernel": 3, "groups": groups,
                        "stride": 2 if i == 0 else 1, "activation": "relu",
                        "group_first_conv": not (s == 0 and i == 0)} for i in range(repeats)])
    return {
        "space": "shufflenet", "resolution": 224, "num_classes": 1000,
        "stem": {"channels": 24, "kernel": 3, "stride": 2, "activation": "relu", "pool": True},
        "stages": stages,
        "head": {"activation": "relu"},
    }


def references() -> dict[str, dict[str, Any]]:
    refs = {
        "mobilenetv3-large-1.0": mobilenetv3("mobilenetv3-large", V3_LARGE, 1.0, 1280),
        "mobilenetv3-large-0.75": mobilenetv3("mobilenetv3-large", V3_LARGE, 0.75, 1280),
        "mobilenetv3-small-1.0": mobilenetv3("mobilenetv3-small", V3_SMALL, 1.0, 1024),
        "mobilenetv3-small-0.75": mobilenetv3("mobilenetv3-small", V3_SMALL, 0.75, 1024),
        "mobilenetv2-1.0": mobilenetv2(1.0),
        "shufflenetv2-0.5": shufflenetv2([24, 48, 96, 192, 1024]),
        "shufflenetv2-1.0": shufflenetv2([24, 116, 232, 464, 1024]),
        "shufflenetv2-1.5": shufflenetv2([24, 176, 352, 704, 1024]),
        "shufflenetv2-2.0": shufflenetv2([24, 244, 488, 976, 2048]),
    }
    v1 = {1: [144, 288, 576], 2: [200, 400, 800], 3: [240, 480, 960], 4: [272, 544, 1088], 8: [384, 768, 1536]}
    for g, widths in v1.items():
        refs[f"shufflenetv1-g{g}"] = shufflenetv1(g, widths)
    return refs


def main() -> None:
    for name, doc in references().items():
        arch = parse_architecture(doc, source=name)
        (HERE / f"{name}.json").write_text(json.dumps(arch.model_dump(mode="json"), indent=2) + "\n")
        print(f"wrote {name}.json ({arch.hash})")


if __name__ == "__main__":
    main()
