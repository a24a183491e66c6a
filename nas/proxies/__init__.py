"""Proxy evaluation: short seeded training (with Optuna pruning hooks) and zero-cost scores.

Importing this package does not import torch; training and scoring do.
"""

from __future__ import annotations

from nas.proxies._recipe import TrainRecipe
from nas.proxies._train import (
    Reporter,
    TrainResult,
    evaluate,
    inherit,
    optuna_reporter,
    seeded,
    select_device,
    train_and_evaluate,
)
from nas.proxies._zero_cost import (
    ZERO_COST_PROXIES,
    ZeroCostProxy,
    grad_norm,
    naswot,
    proxy_batch,
    synflow,
    zero_cost_score,
)

__all__ = [
    "ZERO_COST_PROXIES",
    "ZeroCostProxy",
    "grad_norm",
    "naswot",
    "proxy_batch",
    "synflow",
    "zero_cost_score",
    "Reporter",
    "TrainRecipe",
    "TrainResult",
    "evaluate",
    "inherit",
    "optuna_reporter",
    "seeded",
    "select_device",
    "train_and_evaluate",
]
