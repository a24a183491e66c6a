"""Specialise a trained supernet for a device and a latency target T, in seconds rather than a search.

Phases, each timed: (1) load the supernet and its data; (2) the accuracy predictor, fitted once per
supernet on subnets evaluated one-shot (BN re-estimated) and cached beside it by the file's sha256, so a
new device or T reuses it; (3) regularized evolution scored by that predictor and the device's latency
predictor only (thousands of candidates per second); (4) the best few are evaluated one-shot and
measured on the device; the winner is the most accurate one whose *measured* median is within T. When
none is, the latency predictor was optimistic for these networks: the target is tightened by the worst
measured/predicted ratio and evolution runs again (at most ``rounds`` times).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nas.arch import Architecture, to_string
from nas.supernet._evolution import Scored, evolve
from nas.supernet._predictor import AccuracyPredictor
from nas.supernet._store import LoadedSupernet

log = logging.getLogger(__name__)

MeasureFn = Callable[[Sequence[Architecture]], list[Any]]
"""Networks -> their ``nas.latency.Measurement`` on the device (``measure_many`` bound to a profile)."""


class SpecializeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(default=100, ge=8, le=10_000, description="Subnets evaluated one-shot to fit the "
                         "accuracy predictor (once per supernet; cached).")
    calibration: int = Field(default=512, ge=2, description="Training images for each subnet's BN statistics.")
    candidates: int = Field(default=5000, ge=10, le=10_000_000, description="Candidates evolution scores.")
    population: int = Field(default=100, ge=2)
    sample_size: int = Field(default=25, ge=1)
    finalists: int = Field(default=4, ge=1, le=32, description="Best candidates measured on the device.")
    rounds: int = Field(default=3, ge=1, le=10, description="Evolution rounds at most (each after the first "
                        "tightens the target when no finalist measured within T).")
    seed: int = Field(default=0, ge=0)
    refresh: bool = Field(default=False, description="Refit the accuracy predictor even if one is cached.")


@dataclass
class Finalist:
    arch: Architecture
    predicted_accuracy: float
    predicted_ms: float
    oneshot_accuracy: float
    measured: dict[str, Any]
    """The measurement's statistics (median, p10, p90, ...)."""

    def within(self, target_ms: float) -> bool:
        return float(self.measured["median_ms"]) <= target_ms


@dataclass
class SpecializeResult:
    target_ms: float
    winner: Finalist | None
    finalists: list[Finalist]
    phases: dict[str, float]
    scored: int
    scored_per_second: float
    predictor: dict[str, Any]
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def one(f: Finalist) -> dict[str, Any]:
            return {"arch_hash": f.arch.hash, "architecture": to_string(f.arch),
                    "predicted_accuracy": round(f.predicted_accuracy, 4), "predicted_ms": round(f.predicted_ms, 4),
                    "oneshot_accuracy": round(f.oneshot_accuracy, 4), "measured": f.measured}
        return {"target_ms": self.target_ms, "winner": one(self.winner) if self.winner else None,
                "winner_document": self.winner.arch.model_dump(mode="json") if self.winner else None,
                "finalists": [one(f) for f in self.finalists], "phase_seconds": self.phases,
                "candidates_scored": self.scored, "candidates_per_second": round(self.scored_per_second),
                "rounds": self.rounds, "predictor": self.predictor}


def predictor_path(loaded: LoadedSupernet, settings: SpecializeSettings) -> Path:
    """Beside the supernet file, keyed by its content and by what the fit depends on."""
    digest = hashlib.sha256(loaded.path.read_bytes()).hexdigest()[:16]
    return (loaded.path.parent / ".predictors"
            / f"{digest}-n{settings.samples}-c{settings.calibration}-s{settings.seed}.json")


def cached_predictor(loaded: LoadedSupernet, settings: SpecializeSettings,
                     on_sample: Callable[[int, int], None] | None = None) -> tuple[AccuracyPredictor, dict[str, Any]]:
    """The supernet's accuracy predictor: read from the cache, or fitted (one-shot evaluations) and cached."""
    import json

    from nas.errors import SupernetError
    from nas.supernet._fit import fit_predictor

    path = predictor_path(loaded, settings)
    if path.is_file() and not settings.refresh:
        try:
            predictor = AccuracyPredictor.load(path, loaded.net.space)
            return predictor, {**json.loads(path.read_text()).get("report", {}), "cached": True, "file": str(path)}
        except SupernetError as exc:
            log.warning("refitting the accuracy predictor: %s", exc)
    predictor, report = fit_predictor(loaded, settings.samples, seed=settings.seed,
                                      calibration=settings.calibration, on_sample=on_sample)
    predictor.save(path, {"supernet": str(loaded.path), "report": report})
    return predictor, {**report, "cached": False, "file": str(path)}


def specialize(loaded: LoadedSupernet, latency: Callable[[Architecture], float], measure: MeasureFn,
               target_ms: float, settings: SpecializeSettings = SpecializeSettings(), *,
               on_sample: Callable[[int, int], None] | None = None,
               on_phase: Callable[[str], None] | None = None) -> SpecializeResult:
    """See the module docstring. ``latency``: the device's latency predictor (ms at the network's own
    resolution); ``measure``: real measurements on the device."""
    from nas.supernet._oneshot import evaluate_subnet, oneshot_data

    phases: dict[str, float] = {}

    def phase(name: str) -> float:
        if on_phase is not None:
            on_phase(name)
        return time.perf_counter()

    t = phase("loading data")
    calib_x, val_x, val_y = oneshot_data(loaded, settings.calibration, settings.seed)
    phases["load_data"] = time.perf_counter() - t
    t = phase("accuracy predictor")
    predictor, report = cached_predictor(loaded, settings, on_sample)
    phases["accuracy_predictor"] = time.perf_counter() - t
    net, space = loaded.net, loaded.net.space

    def accuracy(archs: list[Architecture]) -> list[float]:
        return [float(a) for a in predictor.predict(archs)]

    phases["evolution"] = phases["oneshot_finalists"] = phases["measure_finalists"] = 0.0
    goal, rounds, scored, seconds = target_ms, [], 0, 0.0
    finalists: list[Finalist] = []
    for r in range(settings.rounds):
        t = phase(f"evolution (round {r + 1}, target {goal:.3f} ms)")
        found = evolve(space, net.num_classes, accuracy, latency, goal, candidates=settings.candidates,
                       population=settings.population, sample_size=settings.sample_size,
                       keep=settings.finalists, seed=settings.seed + r)
        phases["evolution"] += time.perf_counter() - t
        scored, seconds = scored + found.scored, seconds + found.seconds
        if not found.best:
            rounds.append({"target_ms": goal, "scored": found.scored, "feasible": 0})
            break
        t = phase("one-shot accuracy of the finalists")
        shot = [evaluate_subnet(net, s.arch, calib_x, val_x, val_y).accuracy for s in found.best]
        phases["oneshot_finalists"] += time.perf_counter() - t
        t = phase(f"measuring {len(found.best)} finalist(s) on the device")
        measured = measure([s.arch for s in found.best])
        phases["measure_finalists"] += time.perf_counter() - t
        finalists = [_finalist(s, a, m) for s, a, m in zip(found.best, shot, measured, strict=True)]
        ratio = max(f.measured["median_ms"] / f.predicted_ms for f in finalists)
        rounds.append({"target_ms": round(goal, 4), "scored": found.scored,
                       "per_second": round(found.per_second), "worst_measured_over_predicted": round(ratio, 4),
                       "within_target": sum(f.within(target_ms) for f in finalists)})
        if any(f.within(target_ms) for f in finalists):
            break
        goal = min(goal, target_ms / ratio) * 0.99
    within = [f for f in finalists if f.within(target_ms)]
    winner = max(within, key=lambda f: f.oneshot_accuracy) if within else None
    phases = {k: round(v, 3) for k, v in phases.items()}
    phases["total"] = round(sum(phases.values()), 3)
    return SpecializeResult(target_ms, winner, finalists, phases, scored, scored / seconds if seconds else 0.0,
                            report, rounds)


def _finalist(s: Scored, oneshot: float, measurement: Any) -> Finalist:
    stats = measurement.stats.to_dict() if hasattr(measurement.stats, "to_dict") else dict(measurement.stats)
    return Finalist(s.arch, s.accuracy, s.latency_ms, oneshot, stats)
