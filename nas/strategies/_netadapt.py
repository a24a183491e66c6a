"""NetAdapt (Yang et al. 2018) as used for MobileNetV3: shrink a trained network layer by layer until it
meets the latency target, with weights inherited and briefly fine-tuned at every step.

Phases: ``seed`` (train the starting network with the search's recipe), ``adapt`` (each iteration: the
latency budget drops by dR_i = step x L0 x decay^(i-1); one proposal per layer, sized with the lookup
table to just meet it; each fine-tuned ``finetune_epochs`` from the truncated weights of the current
network; keep the best by accuracy or by accuracy lost per ms saved), ``final`` (a longer fine-tune of
the network that met the target), ``done``. The state lives in the study's user attributes, so an
interrupted search resumes where it was.

Options: :class:`NetAdaptOptions` (spec ``strategy.options``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from nas._documents import service_rules
from nas.arch import Architecture, ArchitectureRef, architecture_field, parse_architecture
from nas.errors import NASError, SearchError
from nas.spaces import check_member
from nas.strategies._base import Proposal, Strategy
from nas.strategies._registry import StrategyOptions, register
from nas.strategies._shrink import Layer, layers
from nas.strategies._sizing import size_proposals

if TYPE_CHECKING:
    import optuna

    from nas.search._context import SearchContext
    from nas.search._executor import JobResult
    from nas.search._spec import SearchSpec
    from nas.spaces import SearchSpace

log = logging.getLogger(__name__)
STATE = "netadapt_state"
SEED_WEIGHTS = "seed-weights.pt"
"""The study artifact ``strategy.options.seed_weights`` is copied to."""


class NetAdaptOptions(StrategyOptions):
    seed: ArchitectureRef = Field(description=(
        "Starting network: a shipped reference name, the one-line string form or an inline architecture "
        "document (`nas run` also takes a local JSON file). It must be a member of the search space."))
    step: float = Field(default=0.02, gt=0, lt=1, description="Latency cut per iteration, as a share of L0.")
    decay: float = Field(default=0.96, gt=0, le=1, description="The cut shrinks by this factor each iteration.")
    finetune_epochs: int = Field(default=1, ge=1, le=1000, description="Fine-tuning of every proposal.")
    final_epochs: int | None = Field(default=None, ge=1, le=2000, description=(
        "The final fine-tune of the network that met the target; default twice the recipe's epochs."))
    selection: Literal["accuracy_per_ms", "accuracy"] = "accuracy_per_ms"
    max_proposals: int = Field(default=8, ge=1, le=1000, description=(
        "Proposals per iteration: the layers with the largest share of table latency."))
    seed_weights: Path | None = Field(default=None, description=(
        "A state file of the seed network (e.g. from `nas arch import-weights`): the seed trial fine-tunes "
        "these weights instead of training from scratch, as MobileNetV3 started from a trained network; its "
        "output layer starts fresh when the class counts differ. Through the service: a path under "
        "NAS_DATA_DIRS."))
    _seed: Architecture | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_seed(self, info: ValidationInfo) -> NetAdaptOptions:
        self._seed = architecture_field(self.seed, files=not service_rules(info), field="seed")
        if self.seed_weights is not None and service_rules(info):
            from nas.data import check_under_data_dirs

            check_under_data_dirs(self.seed_weights, "seed_weights", "a weights file")
        return self

    @property
    def seed_architecture(self) -> Architecture:
        """The starting network as read when the spec was parsed (a local file is read once, then)."""
        assert self._seed is not None
        return self._seed

    def resolved(self, spec: SearchSpec) -> NetAdaptOptions:
        if self.final_epochs is not None:
            return self
        return self.model_copy(update={"final_epochs": 2 * spec.proxy.recipe.epochs})

    def check(self, spec: SearchSpec, space: Callable[[], SearchSpace | None]) -> None:
        """A seed outside the space cannot be shrunk within it: refused with the spec, not in the worker."""
        from nas.spaces import membership_problems

        loaded = space()
        if loaded is None:
            return
        try:
            problems = membership_problems(loaded, self.seed_architecture.with_(
                resolution=spec.latency.resolution or max(loaded.definition.resolution), space=loaded.name))
        except NASError as exc:
            raise ValueError(f"seed: {exc}") from None
        if problems:
            field, reason = problems[0]
            raise ValueError(f"seed: not a member of space {loaded.name!r}: {field}: {reason}")


@register
class NetAdaptStrategy(Strategy[NetAdaptOptions]):
    name = "netadapt"
    options_model = NetAdaptOptions
    pareto = False  # it follows one network down to the target

    # -- state ---------------------------------------------------------------------------
    @staticmethod
    def _state(ctx: SearchContext) -> dict[str, Any]:
        return dict(ctx.study.user_attrs.get(STATE) or {"phase": "seed", "iteration": 0, "pending": [],
                                                         "asked": []})

    @staticmethod
    def _save(ctx: SearchContext, state: dict[str, Any]) -> None:
        ctx.study.set_user_attr(STATE, state)

    def _seed(self, ctx: SearchContext) -> Architecture:
        arch = self.options.seed_architecture.with_(resolution=ctx.reference_resolution,
                                                    num_classes=ctx.num_classes, space=ctx.space.name)
        check_member(ctx.space, arch)
        return arch

    def _seed_weights(self, ctx: SearchContext, seed: Architecture) -> str | None:
        """The ``seed_weights`` state file, checked to hold the seed network (the class count may differ),
        stored as an artifact of the study so a train worker on any machine starts from it."""
        if self.options.seed_weights is None:
            return None
        import torch

        path = self.options.seed_weights.expanduser()
        field = "strategy.options.seed_weights"
        if not path.is_file():
            raise SearchError(f"{field}: no file {str(path)!r}")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            held = parse_architecture(blob["architecture"], source=str(path))
            if not isinstance(blob.get("state_dict"), dict):
                raise KeyError("state_dict")
        except Exception as exc:  # unreadable, not a dict, no architecture/state_dict
            raise SearchError(f"{field}: {path} is not a state file of this project (write one with "
                              f"nas arch import-weights or nas arch export --state): {exc}") from None
        if held.with_(num_classes=seed.num_classes).hash != seed.hash:
            raise SearchError(f"{field}: {path} holds network {held.hash}, not the seed network "
                              f"({seed.with_(num_classes=held.num_classes).hash} with {held.num_classes} classes)")
        from nas.service.artifacts import put_file

        put_file(ctx.storage_url, ctx.study.study_name, SEED_WEIGHTS, path)
        return SEED_WEIGHTS

    # -- the strategy interface ------------------------------------------------------------
    def finished(self, ctx: SearchContext) -> bool:
        return self._state(ctx)["phase"] == "done"

    def pinned_trials(self, ctx: SearchContext) -> set[int]:
        state = self._state(ctx)
        pinned = set(state["asked"])  # this iteration's proposals: one of them becomes the current network
        if state.get("current"):
            pinned.add(state["current"]["trial"])
        return pinned

    def ask(self, ctx: SearchContext, n: int) -> list[Proposal]:
        state = self._state(ctx)
        if state["asked"] and not state["pending"]:
            # Results all recorded but never told (the driver died between the two): take that step now.
            if not self._advance(ctx, state) or state["phase"] == "done":
                return []  # wait for this iteration's results
            state = self._state(ctx)
        if state["phase"] == "seed" and not state["asked"]:
            state["pending"] = [{"architecture": self._seed(ctx).model_dump(mode="json"), "kind": "seed"}]
        elif state["phase"] == "adapt" and not state["pending"] and not state["asked"]:
            room = self._budget_left(ctx) - 1  # one trial stays reserved for the final fine-tune
            state["pending"] = self._iteration_proposals(ctx, state)[:max(room, 0)]
            if not state["pending"]:
                log.info("NetAdapt: no layer can be shrunk further (or no budget left); final fine-tune")
                state["phase"] = "final"
        if state["phase"] == "final" and not state["pending"] and not state["asked"]:
            state["pending"] = [{"architecture": state["current"]["architecture"], "kind": "final",
                                 "epochs": self.options.final_epochs}]
        proposals = []
        for item in state["pending"][:n]:
            if item["kind"] == "seed":  # checked before a trial exists: a refused file leaves none behind
                init = self._seed_weights(ctx, parse_architecture(item["architecture"]))
            else:
                init = state["current"]["checkpoint"]
            trial = ctx.study.ask()
            state["asked"].append(trial.number)
            attrs = {"netadapt_phase": state["phase"], "netadapt_iteration": state["iteration"],
                     "netadapt_kind": item["kind"], "netadapt_layer": item.get("layer"),
                     "netadapt_estimated_ms": item.get("estimated_ms")}
            proposals.append(Proposal(trial=trial, arch=parse_architecture(item["architecture"]),
                                      epochs=item.get("epochs"), init_checkpoint=init, attrs=attrs))
        state["pending"] = state["pending"][len(proposals):]
        self._save(ctx, state)
        return proposals

    def tell(self, ctx: SearchContext, proposal: Proposal, result: JobResult) -> None:
        state = self._state(ctx)
        if proposal.trial.number not in state["asked"] or state["pending"]:
            self._save(ctx, state)
            return
        self._advance(ctx, state)

    def _advance(self, ctx: SearchContext, state: dict[str, Any]) -> bool:
        """Once every asked trial has finished, take the step they decide (saved); False while waiting."""
        finished = self._finished_trials(ctx, state["asked"])
        if len(finished) < len(state["asked"]):
            return False
        state["asked"] = []
        ok = [t for t in finished if t.user_attrs.get("checkpoint") and t.user_attrs.get("accuracy") is not None]
        phase = state["phase"]
        if phase == "seed":
            if not ok:
                raise SearchError("NetAdapt: the seed network failed to train; see the trial's error")
            state["current"] = _summary(ok[0])
            state["initial_ms"] = ok[0].user_attrs["latency_ms"]
            state["current"]["estimated_ms"] = state["initial_ms"]
        elif phase == "adapt" and ok:
            chosen = self._select(ctx, state["current"], ok)
            state["current"] = {**_summary(chosen),
                                "estimated_ms": chosen.user_attrs.get("netadapt_estimated_ms") or
                                chosen.user_attrs["latency_ms"]}
            state["iteration"] += 1
        elif phase == "final":
            state["phase"] = "done"
            if ok:
                state["final"] = _summary(ok[0])
            self._save(ctx, state)
            return True
        # the stop rule uses the table's estimate anchored on the seed's measurement: one measurement of
        # a network that differs by one layer is noisier than the step (seen: +20% under load)
        met = min(state["current"]["latency_ms"], state["current"]["estimated_ms"]) <= ctx.budget_ms
        if met or self._budget_left(ctx) <= 1:
            state["phase"] = "final"
        else:
            state["phase"] = "adapt"
        log.info("NetAdapt iteration %d: current %.3f ms measured, %.3f estimated (target %.3f), accuracy %.4f",
                 state["iteration"], state["current"]["latency_ms"], state["current"]["estimated_ms"], ctx.budget_ms,
                 state["current"]["accuracy"])
        self._save(ctx, state)
        return True

    def resume(self, ctx: SearchContext, interrupted: list[optuna.trial.FrozenTrial]) -> None:
        state = self._state(ctx)
        lost = {t.number for t in interrupted}
        for t in interrupted:
            if t.number in state["asked"]:
                item = {"architecture": t.user_attrs.get("architecture"), "kind": t.user_attrs.get("netadapt_kind"),
                        "layer": t.user_attrs.get("netadapt_layer"),
                        "estimated_ms": t.user_attrs.get("netadapt_estimated_ms")}
                if item["architecture"] is not None:
                    state["pending"].append(item)
        state["asked"] = [n for n in state["asked"] if n not in lost]
        self._save(ctx, state)

    # -- helpers ---------------------------------------------------------------------------
    def _budget_left(self, ctx: SearchContext) -> int:
        from nas.search._study import counted_trials

        trials = ctx.spec.budget.trials
        return 1_000_000 if trials is None else trials - counted_trials(ctx.study)

    @staticmethod
    def _finished_trials(ctx: SearchContext, numbers: list[int]) -> list[optuna.trial.FrozenTrial]:
        from optuna.trial import TrialState

        wanted = set(numbers)
        return [t for t in ctx.study.get_trials(deepcopy=False) if t.number in wanted and t.state in
                (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]

    def _select(self, ctx: SearchContext, current: dict[str, Any], done: list[Any]) -> Any:
        if self.options.selection == "accuracy":
            return max(done, key=lambda t: t.user_attrs["accuracy"])

        def gain(t: Any) -> float:
            # the table's (anchored) estimate: single measurements of near-equal networks are too noisy
            saved = current["estimated_ms"] - t.user_attrs.get("netadapt_estimated_ms", t.user_attrs["latency_ms"])
            delta = t.user_attrs["accuracy"] - current["accuracy"]
            return delta / saved if saved > 1e-9 else float("-inf")

        return max(done, key=gain)

    def _iteration_proposals(self, ctx: SearchContext, state: dict[str, Any]) -> list[dict[str, Any]]:
        current = parse_architecture(state["current"]["architecture"])
        step, decay = self.options.step, self.options.decay
        d_r = step * state["initial_ms"] * decay ** state["iteration"]
        target = max(state["current"]["estimated_ms"] - d_r, 0.0)

        def table_sum(archs: list[Architecture]) -> list[float]:
            predictor = ctx.table_predictor(archs)  # missing parts timed on the device, not here
            return [predictor.table_sum(a) for a in archs]

        if "ratio" not in state:  # first iteration, current = seed: measured / table sum, fixed for the run
            state["ratio"] = state["initial_ms"] / table_sum([current])[0]
        ratio = state["ratio"]
        limit = self.options.max_proposals
        sized = size_proposals(ctx.space, current, self._largest_layers(current, limit, ctx), target, ratio,
                               table_sum)
        if not sized:  # the largest layers are exhausted: any layer that can still meet the target
            sized = size_proposals(ctx.space, current, self._largest_layers(current, 10_000, ctx), target, ratio,
                                   table_sum)[:limit]
        epochs = self.options.finetune_epochs
        log.info("NetAdapt iteration %d: dR %.3f ms, target %.3f ms, %d proposals", state["iteration"], d_r, target,
                 len(sized))
        return [{"architecture": s.arch.model_dump(mode="json"), "kind": "adapt", "layer": s.layer.name,
                 "estimated_ms": s.estimated_ms, "epochs": epochs} for s in sized]

    @staticmethod
    def _largest_layers(arch: Architecture, k: int, ctx: SearchContext) -> list[Layer]:
        """The k shrinkable layers with the most table latency (a stage weighs its blocks' sum)."""
        from nas.latency._parts import network_keys

        predictor = ctx.table_predictor([arch])
        parts = dict(predictor.breakdown(arch))
        keys = network_keys(arch)
        block_ms = [parts.get(key, 0.0) for key in keys[1:1 + len(arch.blocks())]]
        positions = [(s, b) for s, stage in enumerate(arch.stages) for b in range(len(stage))]
        flat = {pos: i for i, pos in enumerate(positions)}

        def weight(layer: Layer) -> float:
            if layer.kind == "mid":
                return block_ms[flat[(layer.stage, layer.block)]]
            if layer.kind == "stage":
                return sum(block_ms[flat[(layer.stage, b)]] for b in range(len(arch.stages[layer.stage])))
            return parts.get(keys[-1], 0.0)

        from nas.strategies._shrink import smaller_widths

        shrinkable = [layer for layer in layers(arch) if smaller_widths(ctx.space, arch, layer)]
        return sorted(shrinkable, key=weight, reverse=True)[:k]


def _summary(t: Any) -> dict[str, Any]:
    a = t.user_attrs
    return {"trial": t.number, "architecture": a["architecture"], "accuracy": a["accuracy"],
            "latency_ms": a["latency_ms"], "checkpoint": a["checkpoint"]}
