"""Tiny, fast search specs for the search-engine tests (real training, real ONNX Runtime latency, timed briefly on
``test-ort-quick``: ``tests/fixtures/devices``)."""

from __future__ import annotations

from typing import Any

from nas.search import SearchSpec, parse_spec

from .latency_support import QUICK_DEVICE


def tiny_spec(**overrides: Any) -> SearchSpec:
    doc: dict[str, Any] = {
        "name": "tiny",
        "space": "mobilenetv3-small",
        "device": QUICK_DEVICE,
        # confirm 0: no final re-measurement pass (tests/test_final_check.py covers it; here it only adds time)
        "latency": {"mode": "measured", "resolution": 64, "target_ms": 0.5, "confirm": 0},
        "reward": {"kind": "soft"},
        "strategy": {"name": "random"},
        "budget": {"trials": 3},
        "proxy": {"dataset": {"kind": "digits", "resolution": 32, "subset": 300},
                  "recipe": {"epochs": 1, "resolution": 32, "batch_size": 32, "threads": 1},
                  "pruner": {"name": "none"}},
        "export_onnx": False,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return parse_spec(doc, local_files=True)  # the tests run searches locally, like `nas run`
