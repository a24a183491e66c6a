"""Lookup-table latency prediction: the sum of per-part entries, then a per-profile calibration.

Entries are stored as timed (each includes one runtime call overhead, measured as the ``identity``
entry); the predictor subtracts that overhead from every entry, so a network pays it once, through
the calibration's intercept. The calibration is a line, ``measured ~ slope * table_sum + intercept``,
fitted by weighted least squares with weights 1/measured^2 (i.e. minimising *relative* error, which is
what the +-10% target is about) on a few measured networks of the same space and resolution; the
slope absorbs what timing parts alone misses (the runtime keeps its blocked memory layout and warm
caches across blocks of a network, not across separate sessions). Prediction is a few string formats and
dict look-ups: no torch, no module building, tens of microseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.arch import Architecture
from nas.errors import LatencyError
from nas.latency import _cache
from nas.latency._fingerprint import fingerprint
from nas.latency._parts import IDENTITY_KEY, network_keys
from nas.latency._profiles import DeviceProfile, load_profile

log = logging.getLogger(__name__)
ANY_SPACE = "*"


@dataclass(frozen=True)
class Calibration:
    slope: float
    intercept_ms: float
    scope: str = ANY_SPACE
    resolution: int = 0
    points: list[list[Any]] = field(default_factory=list, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "resolution": self.resolution, "slope": self.slope,
                "intercept_ms": self.intercept_ms, "points": self.points}


def fit_line(table_sums: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """Weighted least squares ``y ~ a x + b`` with weights 1/y^2 (relative error); one point gives a
    pure offset, and a non-positive slope (degenerate points) falls back to a ratio through the origin."""
    if len(table_sums) != len(measured) or not measured:
        raise LatencyError("calibration needs at least one measured network")
    if len(measured) == 1:
        return 1.0, measured[0] - table_sums[0]
    w = [1.0 / (y * y) for y in measured]
    sw = sum(w)
    sx = sum(wi * x for wi, x in zip(w, table_sums, strict=True))
    sy = sum(wi * y for wi, y in zip(w, measured, strict=True))
    sxx = sum(wi * x * x for wi, x in zip(w, table_sums, strict=True))
    sxy = sum(wi * x * y for wi, x, y in zip(w, table_sums, measured, strict=True))
    det = sw * sxx - sx * sx
    if det > 1e-12 * max(sw * sxx, 1e-300):
        slope = (sw * sxy - sx * sy) / det
        if slope > 0:
            return slope, (sy - slope * sx) / sw
    return sxy / sxx, 0.0


class LatencyPredictor:
    """Predicts a network's latency on one profile from its lookup table (see the module docstring)."""

    def __init__(self, profile: str, fingerprint: str, entries: Mapping[str, float],
                 calibrations: Iterable[Calibration] = ()) -> None:
        self.profile, self.fingerprint = profile, fingerprint
        self.overhead_ms = float(entries.get(IDENTITY_KEY, 0.0))
        self._net = {k: max(v - self.overhead_ms, 0.0) for k, v in entries.items() if k != IDENTITY_KEY}
        self._cal = {(c.scope, c.resolution): c for c in calibrations}
        self._warned: set[tuple[str, int]] = set()

    def __len__(self) -> int:
        return len(self._net)

    def __contains__(self, key: object) -> bool:
        return key in self._net or key == IDENTITY_KEY and self.overhead_ms > 0

    @property
    def calibrations(self) -> list[Calibration]:
        return list(self._cal.values())

    def calibration_for(self, space: str | None, resolution: int) -> Calibration:
        """The space's own calibration at this resolution, else the all-spaces one, else no correction."""
        for scope in (space or ANY_SPACE, ANY_SPACE):
            cal = self._cal.get((scope, resolution))
            if cal is not None:
                return cal
        if (space or ANY_SPACE, resolution) not in self._warned:
            self._warned.add((space or ANY_SPACE, resolution))
            log.warning("no calibration for %s at resolution %d on %s: predicting the raw table sum",
                        space or "any space", resolution, self.profile)
        return Calibration(1.0, self.overhead_ms, ANY_SPACE, resolution)

    def missing(self, arch: Architecture, resolution: int | None = None) -> list[str]:
        return [k for k in network_keys(arch, resolution) if k not in self._net]

    def table_sum(self, arch: Architecture, resolution: int | None = None) -> float:
        """Sum of the entries of the network's parts (each net of the per-call overhead), in ms."""
        net = self._net
        try:
            return sum(net[k] for k in network_keys(arch, resolution))
        except KeyError:
            missing = self.missing(arch, resolution)
            res = resolution or arch.resolution
            raise LatencyError(
                f"the {self.profile} table has no entry for {len(missing)} part(s) of network {arch.hash} at "
                f"resolution {res} (first: {missing[0]}); build it with `nas latency profile --device "
                f"{self.profile} --space {arch.space or 'SPACE'} --resolution {res}`") from None

    def predict(self, arch: Architecture, resolution: int | None = None) -> float:
        """Predicted latency in ms at ``resolution`` (default: the network's deployment resolution)."""
        res = resolution or arch.resolution
        cal = self.calibration_for(arch.space, res)
        return cal.slope * self.table_sum(arch, res) + cal.intercept_ms

    def breakdown(self, arch: Architecture, resolution: int | None = None) -> list[tuple[str, float]]:
        return [(k, self._net.get(k, float("nan"))) for k in network_keys(arch, resolution)]

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_database(cls, profile: str | DeviceProfile, *, database_url: str | None = None) -> LatencyPredictor:
        from nas.latency._measure import resolve_url

        prof = load_profile(profile)
        url, fp = resolve_url(database_url), fingerprint(prof)
        entries = {k: s.median_ms for k, s in _cache.get_entries(url, prof.name, fp).items()}
        cals = [Calibration(c["slope"], c["intercept_ms"], c["scope"], c["resolution"], c["points"])
                for c in _cache.get_calibrations(url, prof.name, fp)]
        return cls(prof.name, fp, entries, cals)

    @classmethod
    def from_file(cls, *paths: Path | str) -> LatencyPredictor:
        """From one or more exported table files of the same profile and fingerprint."""
        from nas.latency._table_file import read_table

        entries: dict[str, float] = {}
        cals: list[Calibration] = []
        ident: tuple[str, str] | None = None
        for path in paths:
            doc = read_table(Path(path))
            this = (doc["profile_name"], doc["fingerprint"])
            if ident and this != ident:
                raise LatencyError(f"{path}: table of {this}, but the others are of {ident}")
            ident = this
            entries.update(doc["entries"])
            cals += [Calibration(c["slope"], c["intercept_ms"], c["scope"], c["resolution"], c.get("points", []))
                     for c in doc.get("calibrations", [])]
        if ident is None:
            raise LatencyError("no latency table file given")
        return cls(ident[0], ident[1], entries, cals)
