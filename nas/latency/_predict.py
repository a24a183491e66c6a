"""Lookup-table latency prediction: the sum of per-part entries, then a per-profile calibration.

Entries are stored as timed (each includes one runtime call overhead, measured as the ``identity``
entry); the predictor subtracts that overhead from every entry, so a network pays it once, through
the calibration's intercept. The calibration (``_calibration``) maps the table sum and the network's
weight count to the measured latency. Prediction is a few string formats, dict look-ups and
multiply-adds: no torch, no numpy, no module building, tens of microseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from nas.arch import Architecture
from nas.errors import LatencyError
from nas.latency import _cache
from nas.latency._calibration import ANY_SPACE, Calibration
from nas.latency._fingerprint import fingerprint as _fingerprint
from nas.latency._parts import IDENTITY_KEY, network_keys
from nas.latency._profiles import DeviceProfile, load_profile

log = logging.getLogger(__name__)


class LatencyPredictor:
    """Predicts a network's latency on one profile from its lookup table (see the module docstring)."""

    def __init__(self, profile: str, fingerprint: str, entries: Mapping[str, float],
                 calibrations: Iterable[Calibration] = (), params: Mapping[str, int] | None = None) -> None:
        self.profile, self.fingerprint = profile, fingerprint
        self.overhead_ms = float(entries.get(IDENTITY_KEY, 0.0))
        self._net = {k: max(v - self.overhead_ms, 0.0) for k, v in entries.items() if k != IDENTITY_KEY}
        self._mparams = {k: v / 1e6 for k, v in (params or {}).items()}
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

    def weights_m(self, arch: Architecture, resolution: int | None = None) -> float:
        """The network's weights in millions, from the table (0 for entries without a count)."""
        mparams = self._mparams
        return sum(mparams.get(k, 0.0) for k in network_keys(arch, resolution))

    def predict(self, arch: Architecture, resolution: int | None = None) -> float:
        """Predicted latency in ms at ``resolution`` (default: the network's deployment resolution)."""
        res = resolution or arch.resolution
        cal = self.calibration_for(arch.space, res)
        weights = self.weights_m(arch, res) if cal.uses_weights else 0.0
        return cal.apply(self.table_sum(arch, res), weights)

    def breakdown(self, arch: Architecture, resolution: int | None = None) -> list[tuple[str, float]]:
        return [(k, self._net.get(k, float("nan"))) for k in network_keys(arch, resolution)]

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_database(cls, profile: str | DeviceProfile, *, database_url: str | None = None,
                      fingerprint: str | None = None) -> LatencyPredictor:
        """The table of ``profile`` timed on this machine, or on the machine whose ``fingerprint`` is given
        (a search driver reading what the device's latency worker timed)."""
        from nas.latency._measure import resolve_url

        prof = load_profile(profile)
        url, fp = resolve_url(database_url), fingerprint or _fingerprint(prof)
        entries = {k: s.median_ms for k, s in _cache.get_entries(url, prof.name, fp).items()}
        cals = [Calibration.from_dict(c) for c in _cache.get_calibrations(url, prof.name, fp)]
        return cls(prof.name, fp, entries, cals, _cache.get_params(url, prof.name, fp))

    @classmethod
    def from_file(cls, *paths: Path | str) -> LatencyPredictor:
        """From one or more exported table files of the same profile and fingerprint."""
        from nas.latency._table_file import read_table

        entries: dict[str, float] = {}
        params: dict[str, int] = {}
        cals: list[Calibration] = []
        ident: tuple[str, str] | None = None
        for path in paths:
            doc = read_table(Path(path))
            this = (doc["profile_name"], doc["fingerprint"])
            if ident and this != ident:
                raise LatencyError(f"{path}: table of {this}, but the others are of {ident}")
            ident = this
            entries.update(doc["entries"])
            params.update(doc["params"])
            cals += [Calibration.from_dict(c) for c in doc.get("calibrations", [])]
        if ident is None:
            raise LatencyError("no latency table file given")
        return cls(ident[0], ident[1], entries, cals, params)
