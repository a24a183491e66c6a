"""Pruning for (accuracy, latency) searches, where Optuna's own pruners do not apply.

Optuna's ``trial.should_prune()`` refuses multi-objective studies, and a one-objective rule would be
wrong anyway: a slow candidate below the median is worth nothing, a fast one below the median may be
the front's fast end. So a candidate is compared only with the finished trials that are at least as
fast as it is. Everything the rule reads is in the study's storage (trial user attributes written by
the driver and the training task), so a Celery train worker decides exactly as the local executor does.
Imports Optuna: load it lazily (``make_pruner``), as the rest of the search does.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.pruners import BasePruner

CURVE_KEY = "intermediate_accuracy"
"""A running trial's validation accuracy per epoch (``nas.proxies.optuna_reporter`` writes it)."""
LATENCY_KEY = "latency_ms"
"""The trial's latency on the device; on a running trial written before training starts."""


class ParetoPruner(BasePruner):
    """Prune a candidate that, judged by its accuracy so far, cannot reach the Pareto front.

    The rule (the product's contract): a running trial at epoch ``k`` is pruned when

    - at least ``n_startup_trials`` COMPLETE trials have an accuracy recorded at epoch ``k``,
    - ``k >= n_warmup_steps`` and ``k`` is not ``final_step`` (a candidate that ran all its epochs is
      complete: pruning it then saves nothing and would hide a measured point from the sampler), and
    - its epoch-``k`` accuracy is below the ``percentile``-kept threshold (50: the median) of the epoch-``k``
      accuracies of the COMPLETE trials whose latency is no higher than its own. Those trials would
      dominate it if the final accuracies keep the epoch-``k`` order.

    If no COMPLETE trial is at least as fast, it is never pruned: it may extend the front at the fast
    end. A trial with no recorded latency is never pruned either. Duplicates (``duplicate_of``) are not
    counted twice. ``percentile`` follows Optuna's ``PercentilePruner``: the share of trials kept, so the
    threshold is the ``100 - percentile``-th percentile of the faster trials' accuracies.

    Reads per trial: ``latency_ms`` and the accuracy curve (``val_accuracy`` on finished trials,
    ``intermediate_accuracy`` on the running one), 1-based epochs as list positions.
    """

    def __init__(self, percentile: float = 50.0, n_startup_trials: int = 3, n_warmup_steps: int = 0,
                 final_step: int | None = None) -> None:
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        if n_startup_trials < 0 or n_warmup_steps < 0:
            raise ValueError("n_startup_trials and n_warmup_steps must be >= 0")
        self._percentile = percentile
        self._n_startup_trials = n_startup_trials
        self._n_warmup_steps = n_warmup_steps
        self._final_step = final_step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        curve, latency = _curve(trial), trial.user_attrs.get(LATENCY_KEY)
        step = len(curve)
        if not curve or latency is None or step < self._n_warmup_steps or step == self._final_step:
            return False
        peers = _peers_at(study, step)
        if len(peers) < self._n_startup_trials:
            return False
        faster = [accuracy for peer_latency, accuracy in peers if peer_latency <= latency]
        if not faster:
            return False
        import numpy as np

        return bool(curve[-1] < float(np.percentile(faster, 100.0 - self._percentile)))


def _curve(trial: optuna.trial.FrozenTrial) -> list[float]:
    """Accuracy per epoch: the finished record if there is one, else what the running trial reported."""
    attrs: dict[str, Any] = trial.user_attrs
    return list(attrs.get("val_accuracy") or attrs.get(CURVE_KEY) or [])


def _peers_at(study: optuna.Study, step: int) -> list[tuple[float, float]]:
    """(latency, epoch-``step`` accuracy) of the COMPLETE trials that ran that far."""
    from optuna.trial import TrialState

    peers = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        curve, latency = _curve(t), t.user_attrs.get(LATENCY_KEY)
        if len(curve) >= step and latency is not None and "duplicate_of" not in t.user_attrs:
            peers.append((float(latency), float(curve[step - 1])))
    return peers


__all__ = ["CURVE_KEY", "LATENCY_KEY", "ParetoPruner"]
