"""Refitting a device's calibration with networks a search measured (``mode: predicted`` searches).

The calibration's own networks are sampled across a whole space; a search's top candidates sit where
its answer will be (near T, in the part of the space the search favours), so they are the most useful
points for the predictions that decide the result. Their measurements join the calibration's points (a
network measured again replaces its older point) and the model is refitted as ``calibrate`` fits it
(``_calibration.fit_calibration``), so the device's stored calibration improves for every later search too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.arch import Architecture
from nas.latency._calibration import ANY_SPACE, fit_calibration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refit:
    """One calibration refitted: where, with how many points, and its model before and after."""

    scope: str
    resolution: int
    points: int
    added: int
    before: dict[str, Any]
    after: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "resolution": self.resolution, "points": self.points, "added": self.added,
                "before": self.before, "after": self.after}


def _model(cal: Any) -> dict[str, Any]:
    return {"model": cal.model, "slope": cal.slope, "intercept_ms": cal.intercept_ms,
            "ms_per_mparam": cal.ms_per_mparam, "slope_per_mparam": cal.slope_per_mparam}


def refit_calibration(profile: str, archs: Sequence[Architecture], measured_ms: Sequence[float], *,
                      database_url: str | None = None) -> list[Refit]:
    """Add (network, measured median) points to the calibration each network is predicted with (its
    space's at its resolution, else the all-spaces one) and refit it; one ``Refit`` per calibration."""
    from nas.latency._fingerprint import fingerprint
    from nas.latency._lut import _store
    from nas.latency._measure import resolve_url
    from nas.latency._predict import LatencyPredictor
    from nas.latency._profiles import load_profile

    prof = load_profile(profile)
    url, fp = resolve_url(database_url), fingerprint(prof)
    predictor = LatencyPredictor.from_database(prof, database_url=url)
    groups: dict[tuple[str, int], list[tuple[Architecture, float]]] = {}
    for arch, ms in zip(archs, measured_ms, strict=True):
        current = predictor.calibration_for(arch.space, arch.resolution)
        scope = current.scope if current.points else (arch.space or ANY_SPACE)
        groups.setdefault((scope, arch.resolution), []).append((arch, ms))
    refits = []
    for (scope, resolution), members in groups.items():
        current = predictor.calibration_for(scope if scope != ANY_SPACE else None, resolution)
        points = {str(p[0]): list(p) for p in current.points}
        for arch, ms in members:
            points[arch.hash] = [arch.hash, predictor.table_sum(arch), float(ms), predictor.weights_m(arch)]
        cal = fit_calibration(list(points.values()), scope, resolution, predictor.overhead_ms)
        _store(url, prof.name, fp, cal)
        refit = Refit(scope, resolution, len(points), len(members), _model(current), _model(cal))
        log.info("calibration %s at %d on %s refitted with %d searched network(s): %s", scope, resolution,
                 prof.name, len(members), refit.after)
        refits.append(refit)
    return refits
