"""The published networks of the search's space, placed on the Pareto plot only where numbers exist.

Nothing is estimated here: a reference gets a point (accuracy and latency) only when it was trained and
measured as a trial of this study; it gets a latency-only mark when its latency was measured on the same
device (as the target T, or earlier in the database's latency cache); otherwise it is left out and the
report says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.latency import cached_median
from nas.paths import references_dir

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class ReferencePoint:
    name: str
    latency_ms: float
    accuracy: float | None  # None: latency measured, accuracy never measured on this task
    how: str


def reference_points(*, space: str | None, resolution: int, num_classes: int, device: str,
                     trials: Iterable[optuna.trial.FrozenTrial], target_reference: dict[str, Any] | None,
                     database_url: str) -> tuple[list[ReferencePoint], list[str]]:
    """(points to draw, one note per reference left out) for the references of ``space``."""
    from nas.arch import load_architecture

    done = list(trials)
    by_hash = {t.user_attrs["arch_hash"]: t for t in done if "arch_hash" in t.user_attrs}
    fingerprints = {t.user_attrs["fingerprint"] for t in done if t.user_attrs.get("fingerprint")}
    if target_reference and target_reference.get("fingerprint"):
        fingerprints.add(target_reference["fingerprint"])
    points: list[ReferencePoint] = []
    notes: list[str] = []
    for path in sorted(references_dir().glob("*.json")):
        arch = load_architecture(str(path))
        if space is None or arch.space != space:
            continue
        name = path.stem
        arch = arch.with_(resolution=resolution, num_classes=num_classes)
        trial = by_hash.get(arch.hash)
        if trial is not None:
            points.append(ReferencePoint(name, float(trial.user_attrs["latency_ms"]),
                                         float(trial.user_attrs["accuracy"]),
                                         f"trained and measured in this study (trial {trial.number})"))
        elif target_reference and target_reference.get("name") == name and target_reference.get("ms"):
            points.append(ReferencePoint(name, float(target_reference["ms"]), None,
                                         "latency measured for the target T; accuracy not measured"))
        elif (cached := cached_median(database_url, arch.hash, resolution, device, fingerprints)) is not None:
            points.append(ReferencePoint(name, cached, None,
                                         "latency from the database's measurement cache; accuracy not measured"))
        else:
            notes.append(f"{name}: neither trained nor measured on {device} at {resolution}x{resolution} "
                         "in this database; left out")
    return points, notes
