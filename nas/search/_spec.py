"""A search job: what to search, for which device and budget, judged how. Validated without torch.

The same document is ``nas run SPEC.yaml``'s input and ``POST /searches``'s body.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from nas._documents import SERVICE_RULES, first_error, read_yaml_mapping, service_rules
from nas.arch import Architecture, ArchitectureRef, architecture_field
from nas.data import DatasetSpec
from nas.errors import RewardError, SpecError
from nas.proxies import TrainRecipe
from nas.rewards import RewardKind, reward_weights
from nas.strategies import StrategyOptions, strategy_entry, strategy_names

if TYPE_CHECKING:
    from nas.spaces import SearchSpace


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
    target_reference: ArchitectureRef | None = Field(default=None, description=(
        "T = measured latency of this network: a shipped reference name, the one-line string form or an inline "
        "architecture document (`nas run` also takes a local JSON file)."))
    margin: float = Field(default=0.0, ge=0.0, le=0.5, description=(
        "Search within T x (1 - margin): a prediction's error (+-2-3%) or a measurement's spread must not "
        "let the winner land just over T. Results still report T."))
    confirm: int = Field(default=3, ge=0, le=8, description=(
        "At the end, measure the best N networks within T again, in one interleaved pass with T's reference "
        "(host drift cancels in the ratio): the result is the best one that this measurement puts within T. "
        "0 turns the check off (the result is then judged by the search's own latencies)."))
    recalibrate_every: int = Field(default=10, ge=0, le=10_000, description=(
        "mode predicted: every N finished trials, measure the top candidates not yet measured on the device "
        "and refit the device's calibration with them (the search's own networks are the best calibration "
        "data). 0 turns it off."))

    @field_validator("target_ms")
    @classmethod
    def _positive_finite(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise ValueError(f"must be a finite number > 0, got {v}")
        return v

    _reference: Architecture | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_target(self, info: ValidationInfo) -> LatencySpec:
        if (self.target_ms is None) == (self.target_reference is None):
            raise ValueError("target_ms: give exactly one of target_ms and target_reference")
        if self.target_reference is not None:
            self._reference = architecture_field(self.target_reference, files=not service_rules(info),
                                                 field="target_reference")
        return self

    @property
    def reference_architecture(self) -> Architecture | None:
        """The target reference as read when the spec was parsed (a local file is read once, then)."""
        return self._reference

    @property
    def reference_label(self) -> str | None:
        """How results name the target reference: as given, or ``inline <hash>`` for a document."""
        ref = self.target_reference
        if isinstance(ref, dict) and self._reference is not None:
            return f"inline {self._reference.hash}"
        return ref if isinstance(ref, str) else None


class RewardSettings(_Strict):
    kind: RewardKind = RewardKind.soft
    alpha: float | None = Field(default=None, description="Weight within the target; only for kind=custom.")
    beta: float | None = Field(default=None, description="Weight beyond the target; only for kind=custom.")

    @model_validator(mode="after")
    def _weights_fit_the_kind(self) -> RewardSettings:
        try:
            reward_weights(self.kind, self.alpha, self.beta)
        except RewardError as exc:
            raise ValueError(f"{exc.field}: {exc.reason}") from None
        return self


def _options_schema() -> dict[str, Any]:
    schemas = []
    for name in strategy_names():
        entry = strategy_entry(name)
        assert entry is not None
        schema = entry.options.model_json_schema()
        schemas.append({**schema, "title": f"{name} options"})
    return {"type": "object", "description": "Options of the strategy named in `name` (one of these models); "
            "unknown keys are refused.", "anyOf": schemas}


class StrategySpec(_Strict):
    name: str = Field(default="tpe", json_schema_extra={"enum": list[JsonValue](strategy_names())})
    options: Annotated[StrategyOptions, WithJsonSchema(_options_schema())] = Field(  # type: ignore[assignment]
        default_factory=dict, validate_default=True)  # the mapping is parsed into the strategy's model

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if strategy_entry(name) is None:
            raise ValueError(f"unknown strategy {name!r} (known: {', '.join(strategy_names())})")
        return name

    @field_validator("options", mode="before")
    @classmethod
    def _typed(cls, options: Any, info: ValidationInfo) -> Any:
        """Parsed once, here, into the named strategy's own options model (which the strategy then uses)."""
        entry = strategy_entry(info.data["name"]) if "name" in info.data else None
        if entry is None or isinstance(options, entry.options):
            return options
        return entry.options.model_validate(options, context=info.context)

    @field_serializer("options")
    def _as_given(self, options: StrategyOptions) -> dict[str, Any]:
        """Only the keys the user gave: the stored spec (and the digest a resume compares) stays as written."""
        return options.model_dump(mode="json", exclude_unset=True)


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


_SUPERNET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*(?<!\.pt)")


class ProxySpec(_Strict):
    dataset: DatasetSpec = DatasetSpec()
    recipe: TrainRecipe = TrainRecipe(epochs=3)
    pruner: PrunerSpec = PrunerSpec()
    supernet: str | None = Field(default=None, min_length=1, description=(
        "A trained supernet (name in NAS_HOME/supernets or, with `nas run`, a supernet.pt file): candidates "
        "are evaluated one-shot with its weights (BN statistics re-estimated) instead of being trained."))

    @field_validator("supernet")
    @classmethod
    def _a_name_through_the_service(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The service never opens a server file for a request: only a supernet's name."""
        if value is not None and service_rules(info) and not _SUPERNET_NAME.fullmatch(value):
            raise ValueError("through the service, name a supernet trained with `nas supernet train` on the "
                             "workers (letters, digits, '.', '_', '-'); files are read only by `nas run`")
        return value


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
        entry = strategy_entry(self.strategy.name)
        if self.reward.kind is RewardKind.pareto and entry is not None and not entry.pareto:
            able = [n for n in strategy_names() if (e := strategy_entry(n)) is not None and e.pareto]
            raise ValueError(f"strategy.name: {self.strategy.name} optimises one objective; use "
                             f"{', '.join(able)} for a Pareto search")
        if self.reward.kind is RewardKind.pareto and self.proxy.pruner.name == "hyperband":
            raise ValueError("proxy.pruner.name: hyperband ranks candidates by one objective; a Pareto search "
                             "prunes with median (against the trials at least as fast) or none")
        return self

    @model_validator(mode="after")
    def _options_fit_the_search(self, info: ValidationInfo) -> SearchSpec:
        """Cross-field rules with the spec-dependent defaults filled in (a tournament larger than the
        population the budget gives, a NetAdapt seed outside the space): refused here, not in a worker."""
        files = not service_rules(info)
        try:
            self.strategy.options.resolved(self).check(self, lambda: _space_of(self.space, files=files))
        except ValueError as exc:
            raise ValueError(f"strategy.options.{exc}") from None
        return self


def _space_of(space: str | dict[str, Any], *, files: bool) -> SearchSpace | None:
    """The spec's space for the strategies' checks; None if it cannot be loaded (reported elsewhere) or,
    under the service's rules, if it is not a shipped name (no server file is read)."""
    from nas.errors import NASError
    from nas.paths import search_spaces_dir
    from nas.spaces import list_spaces, load_space, parse_space

    try:
        if isinstance(space, dict):
            return parse_space(space, "space")
        if space in list_spaces():
            path = search_spaces_dir() / f"{space}.yaml"
            return _shipped_space(space, path.stat().st_mtime_ns)
        return load_space(space) if files else None
    except (NASError, OSError):
        return None


@lru_cache(maxsize=16)
def _shipped_space(name: str, _mtime_ns: int) -> SearchSpace:
    """Parsing a space's YAML took 15 ms of a NetAdapt submission (0.1 ms without); a shipped one is read once."""
    from nas.spaces import load_space

    return load_space(name)


def parse_spec(data: object, source: str = "<inline>", *, local_files: bool = False) -> SearchSpec:
    """Validate a spec document. By default under the service's rules (an API body, a stored search): no
    server file is read, architectures are named by reference, string form or inline document, and dataset
    paths must lie under ``NAS_DATA_DIRS``. ``local_files`` (``nas run``): the local user's own files."""
    if not isinstance(data, dict):
        raise SpecError(source, "(document)", "a search spec must be a mapping")
    try:
        return SearchSpec.model_validate(data, context=None if local_files else SERVICE_RULES)
    except ValidationError as exc:
        raise SpecError(source, *first_error(exc)) from None


def load_spec(path: str | Path) -> SearchSpec:
    """A local spec file, with the local user's rules (it may name the user's own files)."""
    p = Path(path)
    return parse_spec(read_spec_document(p), str(p), local_files=True)


def read_spec_document(path: Path) -> dict[str, Any]:
    """The YAML mapping of a spec file, unvalidated (the CLI client sends it for the service to check)."""
    return read_yaml_mapping(path, lambda field, reason: SpecError(str(path), field, reason), "a search spec")
