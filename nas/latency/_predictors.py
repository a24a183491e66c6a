"""Predictor approaches, one per file, chosen by a profile's ``predictor`` field.

- ``lut`` (``_lut``, ``_predict``): every part of the space timed alone, summed, calibrated on 24
  networks. Needs parts that can be produced quickly (ONNX graphs written directly: ONNX Runtime,
  OpenVINO, ONNX Runtime int8).
- ``ops`` (``_pred_ops``): per-operator costs fitted on ~40 whole networks measured on the device. For
  runtimes whose parts are slow to produce (LiteRT: a litert-torch conversion per part) and devices that
  only time whole networks.

Each approach gives ``load`` (a predictor from the database: ``predict(arch, resolution)``,
``missing(arch, resolution)``), ``ensure`` (time on the device what ``archs`` need; only latency workers
call it) and ``build`` (everything a space needs at a resolution, from an empty database).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from nas.arch import Architecture
from nas.errors import LatencyError

if TYPE_CHECKING:
    from nas.latency._profiles import DeviceProfile
    from nas.spaces import SearchSpace

Progress = Callable[[str, int, int], None]


class Predictor(Protocol):
    profile: str
    fingerprint: str

    def predict(self, arch: Architecture, resolution: int | None = None) -> float: ...

    def missing(self, arch: Architecture, resolution: int | None = None) -> list[str]: ...


class Approach(ABC):
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def load(cls, profile: DeviceProfile, database_url: str | None) -> Predictor: ...

    @classmethod
    @abstractmethod
    def ensure(cls, archs: Sequence[Architecture], profile: DeviceProfile, resolution: int | None,
               database_url: str | None) -> int:
        """Time on the device what predicting ``archs`` needs; returns how many things were timed."""

    @classmethod
    @abstractmethod
    def build(cls, profile: DeviceProfile, space: str | SearchSpace, resolution: int, *, networks: int | None,
              database_url: str | None, progress: Progress | None) -> dict[str, Any]: ...


_REGISTRY: dict[str, type[Approach]] = {}


def register_approach(cls: type[Approach]) -> type[Approach]:
    _REGISTRY[cls.name] = cls
    return cls


def approach_names() -> list[str]:
    return sorted(_REGISTRY)


def approach_for(profile: str | DeviceProfile) -> type[Approach]:
    from nas.latency._profiles import load_profile

    return _REGISTRY[load_profile(profile).predictor]


def load_predictor(profile: str | DeviceProfile, *, database_url: str | None = None) -> Predictor:
    from nas.latency._profiles import load_profile

    prof = load_profile(profile)
    return _REGISTRY[prof.predictor].load(prof, database_url)


def ensure_predictor(archs: Sequence[Architecture], profile: str | DeviceProfile, resolution: int | None = None,
                     *, database_url: str | None = None) -> int:
    from nas.latency._profiles import load_profile

    prof = load_profile(profile)
    return _REGISTRY[prof.predictor].ensure(archs, prof, resolution, database_url)


def build_predictor(profile: str | DeviceProfile, space: str | SearchSpace, resolution: int, *,
                    networks: int | None = None, database_url: str | None = None,
                    progress: Progress | None = None) -> dict[str, Any]:
    from nas.latency._profiles import load_profile

    prof = load_profile(profile)
    return _REGISTRY[prof.predictor].build(prof, space, resolution, networks=networks or prof.predictor_networks,
                                          database_url=database_url, progress=progress)


@register_approach
class LookupTable(Approach):
    name = "lut"

    @classmethod
    def load(cls, profile: DeviceProfile, database_url: str | None) -> Predictor:
        from nas.latency._predict import LatencyPredictor

        return LatencyPredictor.from_database(profile, database_url=database_url)

    @classmethod
    def ensure(cls, archs: Sequence[Architecture], profile: DeviceProfile, resolution: int | None,
               database_url: str | None) -> int:
        from nas.latency._lut import ensure_entries

        return ensure_entries(list(archs), profile, resolution, database_url=database_url)

    @classmethod
    def build(cls, profile: DeviceProfile, space: str | SearchSpace, resolution: int, *, networks: int | None,
              database_url: str | None, progress: Progress | None) -> dict[str, Any]:
        from nas.latency._lut import CALIBRATION_NETWORKS, build_table

        report = build_table(profile, space, resolution, database_url=database_url, progress=progress,
                             calibration_networks=CALIBRATION_NETWORKS if networks is None else networks)
        return {"approach": cls.name, **report.to_dict()}


@register_approach
class OperatorCosts(Approach):
    name = "ops"

    @classmethod
    def load(cls, profile: DeviceProfile, database_url: str | None) -> Predictor:
        from nas.latency._pred_ops import OpsPredictor

        return OpsPredictor.from_database(profile, database_url=database_url)

    @classmethod
    def ensure(cls, archs: Sequence[Architecture], profile: DeviceProfile, resolution: int | None,
               database_url: str | None) -> int:
        from nas.latency._pred_ops import build

        predictor = cls.load(profile, database_url)
        todo = sorted({(a.space, resolution or a.resolution) for a in archs if predictor.missing(a, resolution)},
                      key=str)
        for space, res in todo:
            if not space:
                raise LatencyError(f"profile {profile.name} predicts per operator, fitted per search space: "
                                   "the network must name its space")
            build(profile, space, res, networks=profile.predictor_networks, database_url=database_url)
        return len(todo)

    @classmethod
    def build(cls, profile: DeviceProfile, space: str | SearchSpace, resolution: int, *, networks: int | None,
              database_url: str | None, progress: Progress | None) -> dict[str, Any]:
        from nas.latency._pred_ops import build

        return build(profile, space, resolution, networks=networks, database_url=database_url, progress=progress)
