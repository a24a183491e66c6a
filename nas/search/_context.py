"""Everything a strategy may look at while it searches: spec, study, space, target and reward."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.arch import Architecture
from nas.rewards import RewardKind, RewardSpec
from nas.search._spec import SearchSpec
from nas.spaces import SearchSpace

if TYPE_CHECKING:
    import optuna

    from nas.latency import LatencyPredictor
    from nas.search._executor import Executor


@dataclass
class SearchContext:
    spec: SearchSpec
    study: optuna.Study
    space: SearchSpace
    num_classes: int
    target_ms: float
    """T, the user's latency target (given, or measured from the reference network)."""
    reward: RewardSpec
    storage_url: str
    run_dir: Path
    executor: Executor | None = None
    """Who evaluates on the device; set by ``build_context`` (None: in-process)."""

    @property
    def budget_ms(self) -> float:
        """What the search judges latencies against: T less the spec's safety margin."""
        return self.target_ms * (1.0 - self.spec.latency.margin)

    @property
    def pareto(self) -> bool:
        return self.reward.kind is RewardKind.pareto

    @property
    def reference_resolution(self) -> int:
        """Where T's reference network and NetAdapt's seed are deployed, and the resolution at which the
        proxy trains at the recipe's own size: the spec's, else the space's largest choice."""
        return self.spec.latency.resolution or max(self.space.definition.resolution)

    def decode(self, choices: dict[str, Any]) -> Architecture:
        """Choices -> architecture with the dataset's class count, at its chosen deployment resolution, or
        the spec's where it names one (the space's choice is then left unused, not removed: a study
        resumed keeps its parameters' distributions)."""
        arch = self.space.decode(choices, num_classes=self.num_classes)
        fixed = self.spec.latency.resolution
        return arch if fixed is None or fixed == arch.resolution else arch.with_(resolution=fixed)

    def proxy_resolution(self, arch: Architecture) -> int:
        """The proxy training resolution of a candidate: the recipe's, scaled by the candidate's deployment
        resolution relative to the reference one. Without it, resolution would change latency but never
        the proxy accuracy, and a search would always pick the smallest."""
        recipe = self.spec.proxy.recipe.resolution
        if arch.resolution == self.reference_resolution:
            return recipe
        return max(8, round(recipe * arch.resolution / self.reference_resolution))

    def table_predictor(self, archs: list[Architecture]) -> LatencyPredictor:
        """The device's lookup table, holding every part of ``archs``: missing parts are timed on the device
        by the executor (a driver never times anything itself), and the table read is the one with the
        device's fingerprint, which differs from this machine's when the device is elsewhere."""
        from nas.latency import LatencyPredictor
        from nas.search._executor import LocalExecutor
        from nas.search._tables import table_request

        executor = self.executor or LocalExecutor()
        request = table_request(archs, self.spec.device, self.storage_url, self.study.study_name)
        outcome = executor.time_table(request)
        return LatencyPredictor.from_database(self.spec.device, database_url=self.storage_url,
                                              fingerprint=outcome.fingerprint)

    def checkpoint_name(self, trial_number: int) -> str:
        """The artifact (in the study's database, ``nas.service.artifacts``) a trial's weights are saved as,
        so a worker on another machine can start from them and the driver can export them."""
        from nas.service.artifacts import checkpoint_name

        return checkpoint_name(trial_number)
