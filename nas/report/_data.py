"""Everything a report shows, read once from the study (live, like the API's answers) into plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas.arch import Architecture, parse_architecture
from nas.report._references import ReferencePoint, reference_points
from nas.report._source import StudySource, resolve_source

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class TrialPoint:
    number: int
    state: str
    accuracy: float | None
    latency_ms: float | None
    latency_source: str | None
    reward: float | None
    params: int | None
    macs: int | None
    arch_string: str | None

    @classmethod
    def of(cls, t: optuna.trial.FrozenTrial) -> TrialPoint:
        a = t.user_attrs
        return cls(t.number, t.state.name, a.get("accuracy"), a.get("latency_ms"), a.get("latency_source"),
                   a.get("reward"), a.get("params"), a.get("macs"), a.get("arch_string"))


@dataclass(frozen=True)
class Report:
    source: StudySource
    spec: dict[str, Any]
    device: str
    space: str | None
    resolution: int
    target_ms: float
    target_reference: dict[str, Any] | None
    pareto: bool
    trials: list[TrialPoint]
    front: list[int]  # trial numbers of the non-dominated trials, by latency ascending
    best: TrialPoint | None
    best_architecture: Architecture | None
    references: list[ReferencePoint] = field(default_factory=list)
    reference_notes: list[str] = field(default_factory=list)
    verdict: str = ""
    """The result in words: within or over T, by which measurement (``nas.search._describe``)."""

    @property
    def complete(self) -> list[TrialPoint]:
        return [t for t in self.trials if t.state == "COMPLETE" and t.accuracy is not None and t.latency_ms]

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)


def load_report(identifier: str, database_url: str) -> Report:
    """Resolve ``identifier`` (search id, study name, or ``nas run`` output folder) and read its study."""
    import optuna

    from nas.search import StudyView, best_trial, pareto_trials
    from nas.search._study import rdb_storage

    source = resolve_source(identifier, database_url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=source.study_name, storage=rdb_storage(database_url))
    spec = dict(study.user_attrs.get("spec") or {})
    stored = StudyView(study)
    view = stored.as_context()
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    best = best_trial(view)
    best_arch = parse_architecture(best.user_attrs["architecture"]) if best is not None else None
    device = str(spec.get("device") or _first_attr(trials, "device") or "?")
    resolution = int((spec.get("latency") or {}).get("resolution") or (best_arch.resolution if best_arch else 224))
    sample = best_arch or _first_architecture(trials)
    target_reference = study.user_attrs.get("target_reference")
    complete = [t for t in trials if t.state.name == "COMPLETE" and "accuracy" in t.user_attrs]
    refs, notes = reference_points(
        space=sample.space if sample else None, resolution=resolution,
        num_classes=sample.num_classes if sample else 1000, device=device, trials=complete,
        target_reference=target_reference, database_url=database_url) if sample else ([], [])
    return Report(source=source, spec=spec, device=device, space=sample.space if sample else None,
                  resolution=resolution, target_ms=stored.target_ms, target_reference=target_reference,
                  pareto=stored.pareto,
                  trials=[TrialPoint.of(t) for t in trials], front=[t.number for t in pareto_trials(view)],
                  best=TrialPoint.of(best) if best else None, best_architecture=best_arch, references=refs,
                  reference_notes=notes, verdict=_verdict(view, best, stored.target_ms))


def _verdict(view: Any, best: optuna.trial.FrozenTrial | None, target_ms: float) -> str:
    """The result in the words ``nas run`` prints: within or over T, and by which measurement."""
    import math

    from nas.search._describe import describe_best
    from nas.search._results import over_target_best, trial_summary

    if best is None or not math.isfinite(target_ms):
        return ""
    over = over_target_best(view)
    result = {"best": trial_summary(best, view), "over_target_best": trial_summary(over, view) if over else None}
    return describe_best(result, target_ms)


def _first_attr(trials: list[optuna.trial.FrozenTrial], key: str) -> Any:
    return next((t.user_attrs[key] for t in trials if key in t.user_attrs), None)


def _first_architecture(trials: list[optuna.trial.FrozenTrial]) -> Architecture | None:
    doc = _first_attr(trials, "architecture")
    return parse_architecture(doc) if doc else None
