"""Weight sharing: one supernet per mbconv space, trained with the sandwich rule and in-place
distillation; subnets evaluated one-shot or extracted as static networks with their weights.

Importing this package does not import torch (the spec is validated by the API and the search); the
names that need torch are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from nas.supernet._spec import SandwichSpec, SupernetSpec, load_supernet_spec, parse_supernet_spec, with_overrides

_LAZY = {
    "extract": "_extract",
    "bn_settings": "_layers",
    "SuperBlock": "_model",
    "Supernet": "_model",
    "OneShotResult": "_oneshot",
    "evaluate_subnet": "_oneshot",
    "oneshot_data": "_oneshot",
    "AccuracyPredictor": "_predictor",
    "encode": "_predictor",
    "fit_predictor": "_fit",
    "extreme_choices": "_sampling",
    "largest_architecture": "_sampling",
    "sandwich": "_sampling",
    "smallest_architecture": "_sampling",
    "sort_channels": "_sort",
    "LoadedSupernet": "_store",
    "load_supernet": "_store",
    "resolve": "_store",
    "run_dir": "_store",
    "save_supernet": "_store",
    "SupernetProgress": "_train",
    "train_supernet": "_train",
}

__all__ = ["SandwichSpec", "SupernetSpec", "load_supernet_spec", "parse_supernet_spec", "with_overrides", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"nas.supernet.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nas.supernet' has no attribute {name!r}")
