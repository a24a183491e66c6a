"""Adapter from the search to ``nas.latency``: measured on this machine, or predicted by the lookup table."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from nas.arch import Architecture
from nas.search._evaluate import LatencyOutcome

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def predictor(device: str) -> Any:
    """The device's predictor (its profile's approach), loaded once per process (until ``forget_predictions``)."""
    from nas.latency._predictors import load_predictor

    return load_predictor(device)


def forget_predictions() -> None:
    """After the table or the calibration changed in this process: the next prediction reloads them."""
    predictor.cache_clear()


def judge(arch: Architecture, device: str, mode: str) -> LatencyOutcome:
    """Latency at ``arch.resolution`` (the deployment resolution); measurements are cached in the database."""
    if mode == "predicted":
        table = predictor(device)
        if table.missing(arch):
            # What the predictor lacks (table parts for a dataset's own class count in the head or
            # NetAdapt's shrinks; a per-operator fit for a new space) is timed once, on this device.
            from nas.latency._predictors import ensure_predictor

            timed = ensure_predictor([arch], device)
            log.info("timed %d missing predictor input(s) for network %s on %s", timed, arch.hash, device)
            forget_predictions()
            table = predictor(device)
        return LatencyOutcome(ms=table.predict(arch), source="predicted", device=device,
                              fingerprint=getattr(table, "fingerprint", None))
    from nas.latency import measure

    m = measure(arch, device)
    return LatencyOutcome(ms=m.stats.median_ms, source="measured", p10_ms=m.stats.p10_ms, p90_ms=m.stats.p90_ms,
                          runs=m.stats.runs, device=device, fingerprint=m.fingerprint)
