"""NetAdapt (Yang et al. 2018) as used for MobileNetV3: shrink a trained network layer by layer until it
meets the latency target, with weights inherited and briefly fine-tuned at every step.

Phases: ``seed`` (train the starting network with the search's recipe), ``adapt`` (each iteration: the
latency budget drops by dR_i = step x L0 x decay^(i-1); one proposal per layer, sized with the lookup
table to just meet it; each fine-tuned ``finetune_epochs`` from the truncated weights of the current
network; keep the best by accuracy or by accuracy lost per ms saved), ``final`` (a longer fine-tune of
the network that met the target), ``done``. The state lives in the study's user attributes, so an
interrupted search resumes where it was.

Options (spec ``strategy.options``): ``seed`` (reference name or architecture file; required),
``step`` (0.02), ``decay`` (0.96), ``finetune_epochs`` (1), ``final_epochs`` (2 x recipe epochs),
``selection`` (``accuracy_per_ms`` | ``accuracy``), ``max_proposals`` (8: the layers with the largest
share of table latency).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nas.arch import Architecture, load_architecture, parse_architecture
from nas.errors import SearchError
from nas.spaces import check_member
from nas.strategies._base import Proposal, Strategy
from nas.strategies._shrink import Layer, layers
from nas.strategies._sizing import size_proposals

if TYPE_CHECKING:
    import optuna

    from nas.search._context import SearchContext
    from nas.search._executor import JobResult

log = logging.getLogger(__name__)
STATE = "netadapt_state"


class NetAdaptStrategy(Strategy):
    name = "netadapt"

    # -- state ---------------------------------------------------------------------------
    @staticmethod
    def _state(ctx: SearchContext) -> dict[str, Any]:
        return dict(ctx.study.user_attrs.get(STATE) or {"phase": "seed", "iteration": 0, "pending": [],
                                                         "asked": []})

    @staticmethod
    def _save(ctx: SearchContext, state: dict[str, Any]) -> None:
        ctx.study.set_user_attr(STATE, state)

    @staticmethod
    def _opt(ctx: SearchContext, key: str, default: Any) -> Any:
        return ctx.spec.strategy.options.get(key, default)

    def _seed(self, ctx: SearchContext) -> Architecture:
        name = self._opt(ctx, "seed", None)
        if not name:
            raise SearchError("strategy.options.seed: NetAdapt needs a starting network (a reference name or file)")
        arch = load_architecture(str(name)).with_(resolution=ctx.reference_resolution,
                                                  num_classes=ctx.num_classes, space=ctx.space.name)
        check_member(ctx.space, arch)
        return arch

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
                                 "epochs": int(self._opt(ctx, "final_epochs", 2 * ctx.spec.proxy.recipe.epochs))}]
        proposals = []
        for item in state["pending"][:n]:
            trial = ctx.study.ask()
            state["asked"].append(trial.number)
            attrs = {"netadapt_phase": state["phase"], "netadapt_iteration": state["iteration"],
                     "netadapt_kind": item["kind"], "netadapt_layer": item.get("layer"),
                     "netadapt_estimated_ms": item.get("estimated_ms")}
            init = state["current"]["checkpoint"] if item["kind"] != "seed" else None
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
        if self._opt(ctx, "selection", "accuracy_per_ms") == "accuracy":
            return max(done, key=lambda t: t.user_attrs["accuracy"])

        def gain(t: Any) -> float:
            # the table's (anchored) estimate: single measurements of near-equal networks are too noisy
            saved = current["estimated_ms"] - t.user_attrs.get("netadapt_estimated_ms", t.user_attrs["latency_ms"])
            delta = t.user_attrs["accuracy"] - current["accuracy"]
            return delta / saved if saved > 1e-9 else float("-inf")

        return max(done, key=gain)

    def _iteration_proposals(self, ctx: SearchContext, state: dict[str, Any]) -> list[dict[str, Any]]:
        from nas.latency import LatencyPredictor, ensure_entries

        current = parse_architecture(state["current"]["architecture"])
        step, decay = float(self._opt(ctx, "step", 0.02)), float(self._opt(ctx, "decay", 0.96))
        d_r = step * state["initial_ms"] * decay ** state["iteration"]
        target = max(state["current"]["estimated_ms"] - d_r, 0.0)
        device = ctx.spec.device

        def table_sum(archs: list[Architecture]) -> list[float]:
            ensure_entries(archs, device, database_url=ctx.storage_url)
            predictor = LatencyPredictor.from_database(device, database_url=ctx.storage_url)
            return [predictor.table_sum(a) for a in archs]

        if "ratio" not in state:  # first iteration, current = seed: measured / table sum, fixed for the run
            state["ratio"] = state["initial_ms"] / table_sum([current])[0]
        ratio = state["ratio"]
        limit = int(self._opt(ctx, "max_proposals", 8))
        sized = size_proposals(ctx.space, current, self._largest_layers(current, limit, ctx), target, ratio,
                               table_sum)
        if not sized:  # the largest layers are exhausted: any layer that can still meet the target
            sized = size_proposals(ctx.space, current, self._largest_layers(current, 10_000, ctx), target, ratio,
                                   table_sum)[:limit]
        epochs = int(self._opt(ctx, "finetune_epochs", 1))
        log.info("NetAdapt iteration %d: dR %.3f ms, target %.3f ms, %d proposals", state["iteration"], d_r, target,
                 len(sized))
        return [{"architecture": s.arch.model_dump(mode="json"), "kind": "adapt", "layer": s.layer.name,
                 "estimated_ms": s.estimated_ms, "epochs": epochs} for s in sized]

    @staticmethod
    def _largest_layers(arch: Architecture, k: int, ctx: SearchContext) -> list[Layer]:
        """The k shrinkable layers with the most table latency (a stage weighs its blocks' sum)."""
        from nas.latency import LatencyPredictor
        from nas.latency._parts import network_keys

        predictor = LatencyPredictor.from_database(ctx.spec.device, database_url=ctx.storage_url)
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
