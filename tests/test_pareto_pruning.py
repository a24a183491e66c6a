"""Pruning in (accuracy, latency) searches: a candidate is judged only against the finished trials that are
at least as fast, on hand-made studies and in one real search on the digits proxy."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from nas.errors import SpecError
from nas.search import pareto_trials, run_search
from nas.search._pareto_pruner import ParetoPruner
from nas.search._study import rdb_storage
from nas.spaces import load_space

from .search_helpers import tiny_spec

FASTER = [(1.0, 0.80), (1.5, 0.70), (2.0, 0.60)]
SLOWER = [(5.0, 0.20), (6.0, 0.10)]


def study_with(finished: list[tuple[float, float]], epochs: int = 3) -> optuna.Study:
    """COMPLETE trials as the driver records them: latency and the per-epoch accuracy curve as user
    attributes, objectives (accuracy, latency). Each curve holds its epoch-1 accuracy at every epoch."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for latency, accuracy in finished:
        curve = [accuracy] * epochs
        study.add_trial(optuna.trial.create_trial(
            values=[accuracy, latency],
            user_attrs={"latency_ms": latency, "accuracy": accuracy, "val_accuracy": curve,
                        "intermediate_accuracy": curve}))
    return study


def running(study: optuna.Study, latency: float | None, curve: list[float]) -> FrozenTrial:
    """A trial in training: latency written before training, the curve so far by the reporter."""
    trial = study.ask()
    if latency is not None:
        trial.set_user_attr("latency_ms", latency)
    trial.set_user_attr("intermediate_accuracy", curve)
    return study._storage.get_trial(trial._trial_id)


def test_a_slower_candidate_below_the_median_of_the_faster_finished_trials_is_pruned() -> None:
    study = study_with(FASTER + SLOWER)
    pruner = ParetoPruner(n_startup_trials=3, final_step=3)
    # the faster trials' epoch-1 median is 0.70; the median of all five (0.60) would have kept it
    assert pruner.prune(study, running(study, latency=3.0, curve=[0.65]))
    assert not pruner.prune(study, running(study, latency=3.0, curve=[0.75]))


def test_only_trials_no_slower_than_the_candidate_set_its_bar() -> None:
    study = study_with(FASTER + SLOWER)
    pruner = ParetoPruner(n_startup_trials=3, final_step=3)
    # at 1.5 ms the trials at least as fast are 1.0 (0.80) and 1.5 (0.70): median 0.75
    assert pruner.prune(study, running(study, latency=1.5, curve=[0.72]))
    assert not pruner.prune(study, running(study, latency=1.5, curve=[0.78]))
    assert pruner.prune(study, running(study, latency=1.49, curve=[0.78])), "only 0.80 is as fast: bar 0.80"


def test_a_candidate_faster_than_every_finished_trial_is_never_pruned() -> None:
    study = study_with(FASTER + SLOWER)
    pruner = ParetoPruner(n_startup_trials=1, final_step=3)
    assert not pruner.prune(study, running(study, latency=0.5, curve=[0.0]))
    assert not pruner.prune(study, running(study, latency=0.5, curve=[0.0, 0.0]))


def test_nothing_is_pruned_before_n_startup_trials_have_an_accuracy_at_that_epoch() -> None:
    study = study_with(FASTER)
    assert not ParetoPruner(n_startup_trials=4, final_step=3).prune(study, running(study, 3.0, [0.1]))
    assert ParetoPruner(n_startup_trials=3, final_step=3).prune(study, running(study, 3.0, [0.1]))
    short = study_with(FASTER, epochs=1)  # finished trials that recorded no epoch 2
    assert ParetoPruner(n_startup_trials=3, final_step=3).prune(short, running(short, 3.0, [0.1]))
    assert not ParetoPruner(n_startup_trials=3, final_step=3).prune(short, running(short, 3.0, [0.9, 0.1]))


def test_warm_up_last_epoch_and_unknown_latency_never_prune() -> None:
    study = study_with(FASTER)
    assert not ParetoPruner(n_startup_trials=1, n_warmup_steps=2, final_step=3).prune(
        study, running(study, 3.0, [0.1]))
    assert ParetoPruner(n_startup_trials=1, n_warmup_steps=2, final_step=3).prune(
        study, running(study, 3.0, [0.1, 0.1]))
    assert not ParetoPruner(n_startup_trials=1, final_step=3).prune(study, running(study, 3.0, [0.1] * 3)), \
        "a candidate that ran all its epochs is complete, not pruned"
    assert not ParetoPruner(n_startup_trials=1, final_step=3).prune(study, running(study, None, [0.1]))


def test_the_percentile_is_the_share_of_faster_trials_kept_as_in_optuna() -> None:
    study = study_with(FASTER)  # epoch-1 accuracies 0.60, 0.70, 0.80
    candidate = running(study, 3.0, [0.72])
    assert not ParetoPruner(percentile=50.0, n_startup_trials=1).prune(study, candidate)
    assert ParetoPruner(percentile=25.0, n_startup_trials=1).prune(study, candidate), "bar: 75th pct, 0.75"


def test_pruned_and_duplicate_trials_do_not_count_as_finished_peers() -> None:
    study = study_with(FASTER[:1])
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.PRUNED, user_attrs={"latency_ms": 0.1, "val_accuracy": [0.99]}))
    study.add_trial(optuna.trial.create_trial(
        values=[0.8, 1.0], user_attrs={"latency_ms": 1.0, "val_accuracy": [0.8], "duplicate_of": 0}))
    assert not ParetoPruner(n_startup_trials=2).prune(study, running(study, 3.0, [0.1]))
    assert ParetoPruner(n_startup_trials=1).prune(study, running(study, 3.0, [0.1]))


def test_a_pareto_search_refuses_hyperband_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"proxy\.pruner\.name.*hyperband"):
        tiny_spec(reward={"kind": "pareto"}, strategy={"name": "nsga2"},
                  proxy={"pruner": {"name": "hyperband"}})
    tiny_spec(reward={"kind": "pareto"}, proxy={"pruner": {"name": "median"}})  # accepted


def _choices(small: bool) -> dict[str, Any]:
    """The space's smallest network (fast) or its largest (several times slower on the device)."""
    dims = load_space("mobilenetv3-small").dimensions()
    if small:
        return {**{k: v[0] for k, v in dims.items()}, "width": 0.5}
    return {k: v[-1] for k, v in dims.items()}


def test_a_real_pareto_search_prunes_slow_poor_candidates_and_keeps_them_off_the_front(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    spec = tiny_spec(name="pareto-prune", reward={"kind": "pareto"}, budget={"trials": 2},
                     proxy={"recipe": {"epochs": 2, "resolution": 32, "batch_size": 32, "threads": 1},
                            "pruner": {"name": "median", "startup_trials": 1}})
    study = optuna.create_study(study_name=spec.name, storage=rdb_storage(db),
                                directions=["maximize", "minimize"])
    for small in (True, False):  # epoch-1 accuracy here: 0.38 fast (0.09 ms), 0.28 slow (1.3 ms at 64 px)
        study.enqueue_trial(_choices(small))
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path / "run")

    trials = ctx.study.get_trials()
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned, [(t.state.name, t.user_attrs.get("latency_ms"), t.user_attrs.get("val_accuracy")) for t in trials]
    for t in pruned:
        assert t.user_attrs["epochs_run"] == 1 and len(t.user_attrs["val_accuracy"]) == 1, "curve kept"
        assert t.user_attrs["intermediate_accuracy"] == t.user_attrs["val_accuracy"]
    front = pareto_trials(ctx)
    assert front and all(t.state is TrialState.COMPLETE for t in front)
    assert not {t.number for t in front} & {t.number for t in pruned}
    # every decision follows the rule, replayed on the recorded curves and latencies (trials ran in order)
    pruner = ParetoPruner(n_startup_trials=1, final_step=2)
    for t in trials:
        earlier = optuna.create_study(directions=["maximize", "minimize"])
        for e in trials[:t.number]:
            earlier.add_trial(e)
        decisions = [pruner.prune(earlier, running(earlier, t.user_attrs["latency_ms"], t.user_attrs[
            "val_accuracy"][:k])) for k in (1, 2)]
        assert (t.state is TrialState.PRUNED) == any(decisions), t.number
