"""Reading a search's results back: the best trial, the Pareto front, summaries, and the output files."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nas.rewards import pareto_front
from nas.search._context import SearchContext
from nas.search._final import complete, preference, verdicts, within_target
from nas.search._study import trial_key

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


@dataclass
class StudyView:
    """What ``best_trial``/``pareto_trials`` read from a search context, rebuilt from a stored study (the
    API, ``nas report``): T and the budget the search judged against (T less its margin) are study attributes."""

    study: optuna.Study

    @property
    def pareto(self) -> bool:
        return len(self.study.directions) == 2

    @property
    def target_ms(self) -> float:
        return float(self.study.user_attrs.get("target_ms", float("inf")))

    @property
    def budget_ms(self) -> float:
        return float(self.study.user_attrs.get("budget_ms", self.target_ms))

    def as_context(self) -> SearchContext:
        return cast("SearchContext", self)


def pareto_trials(ctx: SearchContext) -> list[optuna.trial.FrozenTrial]:
    """Non-dominated (max accuracy, min measured/predicted latency) trials, by latency ascending."""
    return pareto_front(complete(ctx.study), key=lambda t: (t.user_attrs["accuracy"], t.user_attrs["latency_ms"]))


def best_trial(ctx: SearchContext) -> optuna.trial.FrozenTrial | None:
    """The search's result: the best-ranked trial within T (``_final``: by the final measurement where
    there is one). With none within T: the best-ranked one (the fastest, for a Pareto search), which
    ``trial_summary`` and the outputs then mark as over T."""
    ranked = preference(ctx, complete(ctx.study))
    if not ranked:
        return None
    checked = verdicts(ctx.study)
    within = next((t for t in ranked if within_target(ctx, t, checked)), None)
    if within is not None:
        return within
    if ctx.pareto:
        return min(ranked, key=lambda t: t.user_attrs["latency_ms"])
    return ranked[0]


def over_target_best(ctx: SearchContext) -> optuna.trial.FrozenTrial | None:
    """The best-ranked trial when it is over T and so is not the result (shown beside it, as such)."""
    ranked = preference(ctx, complete(ctx.study))
    if not ranked or within_target(ctx, ranked[0]):
        return None
    best = best_trial(ctx)
    return ranked[0] if best is None or best.number != ranked[0].number else None


def trial_summary(t: optuna.trial.FrozenTrial, ctx: SearchContext | None = None) -> dict[str, Any]:
    """A trial's facts; with ``ctx``, also whether it is within T and its final measurement, if any."""
    a = t.user_attrs
    out = {
        "trial": t.number, "state": t.state.name, "arch_hash": a.get("arch_hash"), "accuracy": a.get("accuracy"),
        "latency_ms": a.get("latency_ms"), "latency_source": a.get("latency_source"),
        "latency_p10_ms": a.get("latency_p10_ms"), "latency_p90_ms": a.get("latency_p90_ms"),
        "reward": a.get("reward"), "params": a.get("params"), "macs": a.get("macs"),
        "epochs_run": a.get("epochs_run"), "strategy": a.get("strategy"), "arch_string": a.get("arch_string"),
    }
    if ctx is not None and "latency_ms" in a:
        out["within_target"] = within_target(ctx, t)
        out["final_latency"] = verdicts(ctx.study).get(trial_key(t) or "")
    return out


def write_outputs(ctx: SearchContext, search_id: str | None = None) -> dict[str, Any]:
    """best.json (the architecture), result.json (facts and provenance), pareto.json, and, when the best
    trial kept its trained weights, best.pt, best.onnx and the device's own file with its provenance
    (``_deployable``) built from them. Those are also stored as artifacts of the study
    (``nas.service.artifacts``; ``result["artifacts"]`` names them), which is where the API serves them
    from: ``files`` are paths on the machine that ran this. ``search_id``: the service's, for the provenance."""
    best, over = best_trial(ctx), over_target_best(ctx)
    front = pareto_trials(ctx)
    out = ctx.run_dir
    result: dict[str, Any] = {
        "study": ctx.study.study_name, "device": ctx.spec.device, "target_ms": ctx.target_ms,
        "margin": ctx.spec.latency.margin, "budget_ms": ctx.budget_ms,
        "latency_mode": ctx.spec.latency.mode, "deployment_resolution": (
            best.user_attrs["architecture"]["resolution"] if best else ctx.reference_resolution),
        "reward": ctx.reward.model_dump(mode="json"), "strategy": ctx.spec.strategy.name,
        "proxy": {"dataset": ctx.spec.proxy.dataset.name, "recipe": ctx.spec.proxy.recipe.model_dump(mode="json")},
        "target_reference": ctx.study.user_attrs.get("target_reference"),
        "best": trial_summary(best, ctx) if best else None,
        "over_target_best": trial_summary(over, ctx) if over else None,
        "pareto": [trial_summary(t) for t in front],
        "files": {},
        "artifacts": {},
    }
    if best is not None:
        (out / "best.json").write_text(json.dumps(best.user_attrs["architecture"], indent=2) + "\n")
        result["files"]["architecture"] = str(out / "best.json")
        result["train"] = train_commands(ctx, out / "best.json", search_id)
        files, artifacts = _export_best(ctx, best, search_id)
        result["files"].update(files)
        result["artifacts"].update(artifacts)
    (out / "pareto.json").write_text(json.dumps([t.user_attrs["architecture"] for t in front], indent=2) + "\n")
    result["files"]["pareto"] = str(out / "pareto.json")
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def train_commands(ctx: SearchContext, best_json: Path, search_id: str | None) -> dict[str, str]:
    """The commands that train the winner to convergence on the search's dataset, exported for its device:
    here (``nas train``) and, for a service search, on the service's train workers."""
    import shlex

    d = ctx.spec.proxy.dataset
    options = [f"--dataset {d.kind.value}" + (f":{shlex.quote(str(d.path))}" if d.path is not None else ""),
               f"--resolution {d.resolution}", *([f"--subset {d.subset}"] if d.subset is not None else []),
               f"--device {shlex.quote(ctx.spec.device)}"]
    if search_id is None:
        return {"local": " ".join(["nas train", shlex.quote(str(best_json)), *options])}
    return {"local": " ".join([f"nas best {search_id} -o best.json && nas train best.json", *options]),
            "service": " ".join(["nas train --submit --search", search_id, *options])}


def _export_best(ctx: SearchContext, best: optuna.trial.FrozenTrial, search_id: str | None = None
                 ) -> tuple[dict[str, str], dict[str, str]]:
    """(local files, artifact names) of best.pt, best.onnx, the device's own file(s) and their provenance
    (``_deployable``), built from the best trial's checkpoint artifact, whichever worker trained it; nothing
    when the spec turns export off or the trial kept no weights."""
    checkpoint = best.user_attrs.get("checkpoint")
    if not ctx.spec.export_onnx or not checkpoint:
        return {}, {}
    from nas.errors import NotFoundError
    from nas.export import check_onnx, export_onnx, export_state, load_state
    from nas.search._deployable import export_deployable
    from nas.service.artifacts import BEST_ONNX, BEST_STATE, put_file, read_artifact

    study = ctx.study.study_name
    try:
        content = read_artifact(ctx.storage_url, study, checkpoint)
    except NotFoundError:
        log.warning("trial %d's checkpoint %s is not stored: no best.pt/best.onnx", best.number, checkpoint)
        return {}, {}
    arch, model, provenance = load_state(content, name=checkpoint)
    provenance.update({"device": ctx.spec.device, "latency": best.user_attrs.get("latency"),
                       "accuracy": best.user_attrs.get("accuracy"), "trial": best.number})
    written = {BEST_STATE: export_state(arch, ctx.run_dir / BEST_STATE, model=model, provenance=provenance),
               BEST_ONNX: export_onnx(arch, ctx.run_dir / BEST_ONNX, model=model)}
    check_onnx(arch, written[BEST_ONNX], model)
    device_names, _ = export_deployable(ctx, best, arch, model, written, search_id)
    for name, path in written.items():
        put_file(ctx.storage_url, study, name, path)
    files = {"state": str(written[BEST_STATE]), "onnx": str(written[BEST_ONNX]),
             "deployable": str(written[device_names[0]]), "provenance": str(written[device_names[-1]])}
    return files, {"state": BEST_STATE, "onnx": BEST_ONNX, "deployable": device_names[0],
                   "provenance": device_names[-1]}
