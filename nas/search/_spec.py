"""A search job: what to search, for which device and budget, judged how. Validated without torch.

The same document is ``nas run SPEC.yaml``'s input and ``POST /searches``'s body.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nas._documents import first_error, read_yaml_mapping
from nas.data import DatasetSpec
from nas.errors import SpecError
from nas.proxies import TrainRecipe
from nas.rewards import RewardKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencySpec(_Strict):
    """Latency is judged at the deployment ``resolution``, never at the proxy-training one."""

    mode: Literal["measured", "predicted"] = "measured"
    resolution: int | None = Field(default=None, ge=32, le=1024, description=(
        "The deployment resolution. Leave it out to search over the space's `resolution` choices (each "
        "candidate is then timed at its own and proxy-trained at a proportionally scaled size); give it "
        "to deploy every candidate at this one."))
    target_ms: float | None = Field(default=None, description="T in ms; or give target_reference.")
    target_reference: str | None = Field(default=None, description="T = measured latency of this network.")
    margin: float = Field(default=0.0, ge=0.0, le=0.5, description=(
        "Search within T x (1 - margin): a prediction's error (+-2-3%) or a measurement's spread must not "
        "let the winner land just over T. Results still report T."))

    @field_validator("target_ms")
    @classmethod
    def _positive_finite(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise ValueError(f"must be a finite number > 0, got {v}")
        return v

    @model_validator(mode="after")
    def _one_target(self) -> LatencySpec:
        if (self.target_ms is None) == (self.target_reference is None):
            raise ValueError("target_ms: give exactly one of target_ms and target_reference")
        return self


class RewardSettings(_Strict):
    kind: RewardKind = RewardKind.soft
    alpha: float | None = None
    beta: float | None = None


class StrategySpec(_Strict):
    name: Literal["random", "tpe", "nsga2", "evolution", "netadapt"] = "tpe"
    options: dict[str, Any] = Field(default_factory=dict)


class BudgetSpec(_Strict):
    trials: int | None = Field(default=20, ge=1, le=100_000)
    seconds: float | None = Field(default=None, gt=0, le=30 * 24 * 3600)

    @model_validator(mode="after")
    def _some_budget(self) -> BudgetSpec:
        if self.trials is None and self.seconds is None:
            raise ValueError("trials: give a trial budget, a time budget or both")
        return self


class PrunerSpec(_Strict):
    name: Literal["none", "median", "hyperband"] = "median"
    startup_trials: int = Field(default=3, ge=0)
    warmup_epochs: int = Field(default=0, ge=0, description="Epochs a candidate always gets before pruning.")


class ProxySpec(_Strict):
    dataset: DatasetSpec = DatasetSpec()
    recipe: TrainRecipe = TrainRecipe(epochs=3)
    pruner: PrunerSpec = PrunerSpec()
    supernet: str | None = Field(default=None, min_length=1, description=(
        "A trained supernet (name in NAS_HOME/supernets or a supernet.pt file): candidates are evaluated "
        "one-shot with its weights (BN statistics re-estimated) instead of being trained."))


class SearchSpec(_Strict):
    name: str = Field(default="search", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    space: str | dict[str, Any] = "mobilenetv3-small"
    device: str = "cpu-ort-1t"
    latency: LatencySpec
    reward: RewardSettings = RewardSettings()
    strategy: StrategySpec = StrategySpec()
    budget: BudgetSpec = BudgetSpec()
    proxy: ProxySpec = ProxySpec()
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Sampler seed (Optuna takes 32 bits).")
    export_onnx: bool = Field(default=True, description="Also write the best network as ONNX + state file.")

    @model_validator(mode="after")
    def _pareto_needs_a_sampler_that_can(self) -> SearchSpec:
        if self.reward.kind is RewardKind.pareto and self.strategy.name == "netadapt":
            raise ValueError("strategy.name: netadapt follows one network down to the target; "
                             "use nsga2, tpe or random for a Pareto search")
        if self.reward.kind is RewardKind.pareto and self.proxy.pruner.name == "hyperband":
            raise ValueError("proxy.pruner.name: hyperband ranks candidates by one objective; a Pareto search "
                             "prunes with median (against the trials at least as fast) or none")
        return self


def parse_spec(data: object, source: str = "<inline>") -> SearchSpec:
    if not isinstance(data, dict):
        raise SpecError(source, "(document)", "a search spec must be a mapping")
    try:
        spec = SearchSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, *first_error(exc)) from None
    _check_strategy_options(spec, source)
    return spec


def _check_strategy_options(spec: SearchSpec, source: str) -> None:
    from nas.search._strategy_options import OPTIONS

    try:
        OPTIONS[spec.strategy.name].model_validate(spec.strategy.options)
    except ValidationError as exc:
        field, reason = first_error(exc)
        raise SpecError(source, f"strategy.options.{field}" if field != "(document)" else "strategy.options",
                        reason) from None


def load_spec(path: str | Path) -> SearchSpec:
    p = Path(path)
    return parse_spec(read_spec_document(p), str(p))


def read_spec_document(path: Path) -> dict[str, Any]:
    """The YAML mapping of a spec file, unvalidated (the CLI client sends it for the service to check)."""
    return read_yaml_mapping(path, lambda field, reason: SpecError(str(path), field, reason), "a search spec")
