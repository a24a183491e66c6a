"""The unit of work: train one candidate on the proxy task, judge its latency on the device.

Requests and results are small JSON-able pydantic models, so the same functions run in-process
(local executor) and in Celery workers (``workers/``), which receive nothing but these documents.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from nas.arch import Architecture, parse_architecture
from nas.data import DatasetSpec
from nas.proxies import TrainRecipe
from nas.rewards import RewardSpec
from nas.search._spec import PrunerSpec

if TYPE_CHECKING:
    from nas.data import ProxyData

log = logging.getLogger(__name__)


class TrainRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    storage_url: str
    study_name: str
    trial_id: int
    trial_number: int
    architecture: dict[str, Any]
    dataset: DatasetSpec
    recipe: TrainRecipe
    report: bool = True
    """Report each epoch's accuracy to the trial so the study's pruner can stop it."""
    pruner: PrunerSpec = PrunerSpec()
    pareto_pruning: bool = False
    """Prune against the trials at least as fast (Pareto search): needs ``latency_ms`` before training."""
    latency_ms: float | None = None
    """The candidate's latency, judged before training; written on the trial for the Pareto pruner."""
    reward: RewardSpec | None = None
    """Single-objective search with a pruner: each epoch is reported as the *reward* of (accuracy so far,
    latency), so the pruner stops what the search would rank low, not merely what is less accurate
    (pruning by accuracy alone stopped fast candidates a little behind at epoch 2 and kept slow ones the
    reward then ranked last). Needs ``latency_ms`` before training."""
    init_checkpoint: str | None = None
    """Artifact (of this study, ``nas.service.artifacts``) holding the weights to start from (NetAdapt)."""
    save_checkpoint: str | None = None
    """Artifact to store the trained weights as, unless the trial is pruned."""
    supernet: str | None = None
    """Evaluate one-shot with this supernet's weights instead of training (``proxy.supernet``)."""

    @property
    def needs_latency(self) -> bool:
        """Executors judge latency first and send it along (``with_latency``) when this is true."""
        return (self.pareto_pruning or self.reward is not None) and self.latency_ms is None

    def with_latency(self, ms: float) -> TrainRequest:
        return self.model_copy(update={"latency_ms": ms})


class TrainOutcome(BaseModel):
    accuracy: float
    val_accuracy: list[float]
    epochs_run: int
    pruned: bool
    diverged: bool
    train_seconds: float
    device: str
    inherited: int = 0
    checkpoint: str | None = None


class TrialRef(BaseModel):
    """Where a distributed task records its outcome: the trial's user attributes in the study's database."""

    model_config = ConfigDict(frozen=True)

    storage_url: str
    study_name: str
    trial_id: int
    trial_number: int


class StudyRef(BaseModel):
    """Where a distributed task records a latency that belongs to no trial (the target reference's, T):
    the study's user attribute ``key``, in the study's database."""

    model_config = ConfigDict(frozen=True)

    storage_url: str
    study_name: str
    key: str


class LatencyRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    architecture: dict[str, Any]
    device: str
    mode: Literal["measured", "predicted"]
    trial: TrialRef | None = None
    study: StudyRef | None = None
    """For a network without a trial (T's reference): where the distributed outcome goes."""


class LatencyOutcome(BaseModel):
    ms: float
    source: Literal["measured", "predicted"]
    p10_ms: float | None = None
    p90_ms: float | None = None
    runs: int | None = None
    device: str
    fingerprint: str | None = None


@lru_cache(maxsize=4)
def _dataset(spec: DatasetSpec) -> ProxyData:
    from nas.data import load_dataset

    return load_dataset(spec)


def dataset_classes(spec: DatasetSpec) -> int:
    return _dataset(spec).num_classes


def train_candidate(req: TrainRequest) -> TrainOutcome:
    """Proxy-train one candidate; pruning decisions come from the study's pruner through RDB storage."""
    if req.supernet is not None:
        from nas.supernet._trial import oneshot_trial

        return oneshot_trial(req)
    import optuna
    import torch

    from nas.proxies import optuna_reporter, train_and_evaluate

    arch = parse_architecture(req.architecture)
    report: Any = None
    if req.report:
        from nas.search._study import make_pruner

        pruner = make_pruner(req.pruner, req.recipe.epochs, pareto=req.pareto_pruning)
        study = optuna.load_study(study_name=req.study_name, storage=_storage(req.storage_url), pruner=pruner)
        trial = optuna.trial.Trial(study, req.trial_id)
        if req.pareto_pruning:
            if req.latency_ms is None:  # e.g. resent by hand without it: train in full rather than guess
                log.warning("trial %d: no latency before training; it will not be pruned", req.trial_number)
            else:
                from nas.search._pareto_pruner import LATENCY_KEY

                trial.set_user_attr(LATENCY_KEY, req.latency_ms)
        score = None
        if req.reward is not None and req.latency_ms is not None:
            reward, latency_ms = req.reward, req.latency_ms
            score = lambda accuracy: reward.reward(accuracy, latency_ms)  # noqa: E731
        report = optuna_reporter(trial, pruner if req.pareto_pruning else None, score=score)
    report = _unless_abandoned(req, report)
    init_state = None
    if req.init_checkpoint:
        import io

        from nas.builder import build_model
        from nas.service.artifacts import read_artifact
        from nas.strategies._shrink import truncate_state

        blob = read_artifact(req.storage_url, req.study_name, req.init_checkpoint)
        parent = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        init_state = truncate_state(_for_these_classes(parent, arch), build_model(arch).state_dict())
    result = train_and_evaluate(arch, _dataset(req.dataset), req.recipe, report=report, init_state=init_state)
    checkpoint = None
    if req.save_checkpoint and not result.pruned:
        from nas.export import state_bytes
        from nas.service.artifacts import put_artifact

        content = state_bytes(arch, model=_load_state(arch, result.state_dict),
                              provenance={"trial": req.trial_number, "study": req.study_name,
                                          "recipe": req.recipe.model_dump(mode="json"), "dataset": req.dataset.name})
        put_artifact(req.storage_url, req.study_name, req.save_checkpoint, content)
        checkpoint = req.save_checkpoint
    log.info("trial %d (%s): accuracy %.4f after %d epochs%s", req.trial_number, arch.hash, result.accuracy,
             result.epochs_run, " (pruned)" if result.pruned else "")
    return TrainOutcome(accuracy=result.accuracy, val_accuracy=result.val_accuracy, epochs_run=result.epochs_run,
                        pruned=result.pruned, diverged=result.diverged, train_seconds=result.train_seconds,
                        device=result.device, inherited=result.inherited, checkpoint=checkpoint)


def _for_these_classes(blob: dict[str, Any], arch: Architecture) -> dict[str, Any]:
    """A state file's tensors, without its output layer when it was trained for another class count
    (pretrained ImageNet weights seeding a proxy task): that layer starts fresh, as in transfer learning,
    rather than as the first rows of another task's classifier."""
    from nas.builder import output_layer

    state: dict[str, Any] = blob["state_dict"]
    parent = blob.get("architecture")
    if parent is None or parent.get("num_classes") == arch.num_classes:
        return state
    prefix = output_layer(parse_architecture(parent))
    return {k: v for k, v in state.items() if not k.startswith(prefix)}


def _unless_abandoned(req: TrainRequest, report: Any) -> Any:
    """Before each epoch's report: stop (``TrialAbandoned``) once the trial is no longer RUNNING, because its
    search was cancelled or a new driver re-runs it, so nobody would read what this run produces."""
    from nas.errors import TrialAbandoned

    def checked(epoch: int, accuracy: float) -> bool:
        state = _storage(req.storage_url).get_trial(req.trial_id).state
        if state.name != "RUNNING":
            raise TrialAbandoned(f"trial {req.trial_number} is {state.name.lower()}: training stopped after "
                                 f"epoch {epoch}")
        return bool(report(epoch, accuracy)) if report is not None else False

    return checked


def _load_state(arch: Architecture, state: dict[str, Any]) -> Any:
    from nas.builder import build_model

    model = build_model(arch)
    model.load_state_dict(state)
    return model


@lru_cache(maxsize=8)
def _storage(url: str) -> Any:
    from nas.search._study import rdb_storage

    return rdb_storage(url)


def judge_latency(req: LatencyRequest) -> LatencyOutcome:
    """Latency at the architecture's own (deployment) resolution, measured on this machine or predicted."""
    from nas.search._latency import judge

    return judge(parse_architecture(req.architecture), req.device, req.mode)
