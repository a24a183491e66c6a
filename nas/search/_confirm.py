"""Measuring a search's best networks again, on the device, all in one pass (runs where latency runs:
in-process for ``nas run``, on the ``latency.<device>`` worker in the service).

Why one pass with T's reference: a network timed 0.5% under T during the search may time over T an hour
later, because the host's speed drifts. Timed interleaved with the reference in the same fresh process,
both see the same host, so their *ratio* is what decides "within T", whatever the drift. In ``mode:
predicted`` the same measurements refit the device's calibration (``nas.latency.refit_calibration``).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from nas.arch import parse_architecture
from nas.search._evaluate import StudyRef

log = logging.getLogger(__name__)


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    architectures: list[dict[str, Any]]
    reference: dict[str, Any] | None = None
    """T's reference network, timed in the same pass (None when T was given in ms)."""
    device: str
    recalibrate: bool = False
    """Refit the device's calibration with these measurements (``mode: predicted``)."""
    study: StudyRef | None = None
    """Where a distributed outcome goes (a study attribute)."""


class NetworkTiming(BaseModel):
    arch_hash: str
    resolution: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    predicted_ms: float | None = None
    """The lookup-table prediction before the refit (``recalibrate`` only)."""
    repredicted_ms: float | None = None
    """The prediction with the refitted calibration (``recalibrate`` only)."""


class ConfirmOutcome(BaseModel):
    device: str
    fingerprint: str
    networks: list[NetworkTiming]
    reference: NetworkTiming | None = None
    refits: list[dict[str, Any]] = []


def confirm_latency(req: ConfirmRequest) -> ConfirmOutcome:
    """Time ``req.architectures`` and T's reference interleaved in one fresh process (no cache), on this
    machine's device profile; with ``recalibrate``, refit the calibration with the networks' medians."""
    from nas.latency import measure_many
    from nas.latency._measure import resolve_url
    from nas.search._latency import forget_predictions, predictor

    archs = [parse_architecture(a) for a in req.architectures]
    reference = parse_architecture(req.reference) if req.reference is not None else None
    together = archs + ([reference] if reference is not None else [])
    url = resolve_url()
    before = [predictor(req.device).predict(a) for a in archs] if req.recalibrate else None
    measured = measure_many(together, req.device, database_url=url, use_cache=False, group=len(together))
    timings = [_timing(m) for m in measured]
    refits: list[dict[str, Any]] = []
    if req.recalibrate and archs:
        from nas.latency import load_profile, refit_calibration

        if load_profile(req.device).predictor == "lut":
            refits = [r.to_dict() for r in refit_calibration(
                req.device, archs, [t.median_ms for t in timings[:len(archs)]], database_url=url)]
        else:  # a per-operator fit is refitted on every stored measurement of the device when it loads
            refits = [{"scope": "ops", "added": len(archs)}]
        forget_predictions()
        after = [predictor(req.device).predict(a) for a in archs]
        assert before is not None
        for t, b, a in zip(timings, before, after, strict=False):
            t.predicted_ms, t.repredicted_ms = b, a
    return ConfirmOutcome(device=req.device, fingerprint=measured[0].fingerprint if measured else "",
                          networks=timings[:len(archs)], reference=timings[len(archs)] if reference else None,
                          refits=refits)


def _timing(m: Any) -> NetworkTiming:
    s = m.stats
    return NetworkTiming(arch_hash=m.arch_hash, resolution=m.resolution, median_ms=s.median_ms, p10_ms=s.p10_ms,
                         p90_ms=s.p90_ms, runs=s.runs)
