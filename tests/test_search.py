"""The search engine end to end on SQLite: strategies, records, Pareto, pruning, dedup and resume."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from nas.arch import parse_architecture
from nas.search import StudyView, best_trial, pareto_trials, run_search, write_outputs
from nas.spaces import load_space, membership_problems

from .finished_search import FinishedSearch
from .search_helpers import tiny_spec

pytest_plugins = ["tests.finished_search"]  # finished_search: one real tiny NSGA-II search per session

RECORDED = {"architecture", "arch_hash", "arch_string", "params", "macs", "accuracy", "latency_ms",
            "latency_source", "latency_p10_ms", "latency_p90_ms", "reward", "strategy", "device"}


@pytest.fixture
def db(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'nas.db'}"


@pytest.mark.parametrize("strategy", ["random", "tpe", "nsga2", "evolution"])
def test_each_sampling_strategy_runs_a_tiny_search_and_records_every_fact(strategy: str, db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    options = {"population_size": 2} if strategy in ("nsga2", "evolution") else {}
    spec = tiny_spec(name=f"t-{strategy}", strategy={"name": strategy, "options": options})
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path / "run")
    trials = ctx.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 3
    for t in trials:
        assert RECORDED <= set(t.user_attrs), set(RECORDED) - set(t.user_attrs)
        assert t.user_attrs["latency_source"] == "measured"
        assert 0.0 <= t.user_attrs["accuracy"] <= 1.0 and t.user_attrs["latency_ms"] > 0
        arch = parse_architecture(t.user_attrs["architecture"])
        assert arch.resolution == 64 and arch.num_classes == 10
        assert membership_problems(load_space("mobilenetv3-small"), arch) == []
        expected = t.user_attrs["accuracy"] * (t.user_attrs["latency_ms"] / 0.5) ** -0.07
        assert math.isclose(t.value, expected, rel_tol=1e-9)
    result = write_outputs(ctx)
    # The result is the best-rewarded trial within T; with none within T, the best-rewarded one, marked.
    within = [t for t in trials if t.user_attrs["latency_ms"] <= 0.5]
    expected_best = max(within or trials, key=lambda t: t.value)
    assert result["best"]["trial"] == expected_best.number
    assert result["best"]["within_target"] is bool(within)
    assert (tmp_path / "run" / "best.json").is_file()


def test_the_study_lives_in_the_given_database_for_the_optuna_dashboard(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run_search(tiny_spec(name="dash", budget={"trials": 1}), storage_url=db, run_dir=tmp_path)
    study = optuna.load_study(study_name="dash", storage=db)
    assert study.user_attrs["target_ms"] == 0.5
    assert study.user_attrs["spec"]["strategy"]["name"] == "random"
    assert len(study.trials) == 1


def test_evolution_children_differ_from_their_tournament_parent_in_one_choice(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tiny_spec(name="evo", strategy={"name": "evolution", "options": {"population_size": 2,
                                                                            "tournament_size": 1}},
                     budget={"trials": 3})
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    children = [t for t in ctx.study.trials if "evolution" in t.system_attrs]
    assert len(children) == 1  # the population of 2, then a child
    for child in children:
        parent = ctx.study.trials[child.system_attrs["evolution"]["parent_trial"]]
        assert sum(parent.params[k] != child.params[k] for k in parent.params) == 1


def test_pareto_search_returns_the_non_dominated_front(finished_search: FinishedSearch) -> None:
    """On the session's finished NSGA-II search (``tests/finished_search.py``), read back from its database."""
    study = optuna.load_study(study_name=finished_search.study_name, storage=finished_search.database_url)
    ctx = StudyView(study).as_context()
    assert len(ctx.study.directions) == 2 and len(ctx.study.trials) == finished_search.trials
    front = pareto_trials(ctx)
    done = ctx.study.get_trials(states=(TrialState.COMPLETE,))
    for f in front:
        fa, fl = f.user_attrs["accuracy"], f.user_attrs["latency_ms"]
        assert not any(t.user_attrs["accuracy"] >= fa and t.user_attrs["latency_ms"] <= fl and
                       (t.user_attrs["accuracy"] > fa or t.user_attrs["latency_ms"] < fl) for t in done)
    best = best_trial(ctx)
    assert best is not None and best in front or best.number in {f.number for f in front}


def test_a_repeated_architecture_reuses_the_earlier_result_instead_of_training_again(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tiny_spec(name="dup", budget={"trials": 2})
    ctx = run_search(spec.model_copy(update={"budget": spec.budget.model_copy(update={"trials": 1})}),
                     storage_url=db, run_dir=tmp_path)
    ctx.study.enqueue_trial(ctx.study.trials[0].params)
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    first, second = ctx.study.trials
    assert second.user_attrs["duplicate_of"] == 0
    assert second.value == first.value and second.user_attrs["accuracy"] == first.user_attrs["accuracy"]


def test_a_search_interrupted_mid_trial_resumes_and_reruns_that_candidate(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tiny_spec(name="resume", budget={"trials": 2})
    ctx = run_search(spec.model_copy(update={"budget": spec.budget.model_copy(update={"trials": 1})}),
                     storage_url=db, run_dir=tmp_path)
    # a driver killed mid-trial leaves the trial RUNNING in storage
    zombie = ctx.study.ask()
    choices = {n: zombie.suggest_categorical(n, o) for n, o in ctx.space.dimensions().items()}
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    states = {t.number: t.state for t in ctx.study.trials}
    assert states[zombie.number] is TrialState.FAIL
    assert ctx.study.trials[zombie.number].user_attrs["interrupted"] is True
    retry = [t for t in ctx.study.trials if t.user_attrs.get("retry_of") == zombie.number]
    assert len(retry) == 1 and retry[0].state is TrialState.COMPLETE and retry[0].params == choices
    assert sum(s is TrialState.COMPLETE for s in states.values()) == 2


def test_resuming_with_a_different_spec_is_refused(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nas.errors import SearchError

    run_search(tiny_spec(name="same", budget={"trials": 1}), storage_url=db, run_dir=tmp_path)
    with pytest.raises(SearchError, match="different spec"):
        run_search(tiny_spec(name="same", seed=5, budget={"trials": 1}), storage_url=db, run_dir=tmp_path)


def test_the_median_pruner_stops_a_candidate_below_the_median_curve(db: str) -> None:
    from optuna.distributions import FloatDistribution

    from nas.search import TrainRequest
    from nas.search._evaluate import train_candidate
    from nas.search._study import rdb_storage

    study = optuna.create_study(study_name="prune", storage=rdb_storage(db), direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    for _ in range(2):  # two earlier candidates that were perfect after every epoch
        study.add_trial(optuna.trial.create_trial(value=1.0, intermediate_values={1: 1.0, 2: 1.0, 3: 1.0},
                                                  params={"x": 0.0}, distributions={"x": FloatDistribution(0, 1)}))
    trial = study.ask()
    spec = tiny_spec()
    arch = load_space("mobilenetv3-small").sample(seed=1, num_classes=10).with_(resolution=64)
    outcome = train_candidate(TrainRequest(
        storage_url=db, study_name="prune", trial_id=trial._trial_id, trial_number=trial.number,
        architecture=arch.model_dump(mode="json"), dataset=spec.proxy.dataset,
        recipe=spec.proxy.recipe.model_copy(update={"epochs": 3}),
        pruner={"name": "median", "startup_trials": 1}))
    assert outcome.pruned and outcome.epochs_run == 1


def test_a_single_objective_search_prunes_on_the_reward_so_far_not_on_accuracy(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The pruner sees what the study maximises: each epoch's reward of (accuracy so far, latency),
    latency being judged before training. A fast candidate a little less accurate at epoch 1 then
    outranks a slow, accurate one, as it will in the final ranking."""
    from nas.rewards import RewardSpec

    spec = tiny_spec(name="reward-prune", reward={"kind": "hard"}, budget={"trials": 3},
                     latency={"mode": "measured", "resolution": 64, "target_ms": 0.05},
                     proxy={"recipe": {"epochs": 2, "resolution": 32, "batch_size": 32, "threads": 1},
                            "pruner": {"name": "median", "startup_trials": 1}})
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    hard = RewardSpec(kind="hard", target_ms=0.05)
    for t in ctx.study.trials:
        latency, curve = t.user_attrs["latency_ms"], t.user_attrs["val_accuracy"]
        assert latency > 0.05, "every candidate is over this T, so reward < accuracy tells them apart"
        assert t.intermediate_values == pytest.approx(
            {epoch: hard.reward(acc, latency) for epoch, acc in enumerate(curve, start=1)})
        if t.state is TrialState.PRUNED:
            assert t.value == pytest.approx(hard.reward(curve[-1], latency))


def test_a_latency_margin_judges_every_trial_against_t_less_the_margin_and_reports_both(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``latency.margin`` keeps a winner that is predicted (or measured once) just under T from landing
    just over it: the reward, and so the choice of the best, use T x (1 - margin); results keep T."""
    from nas.rewards import RewardSpec

    spec = tiny_spec(name="margin", budget={"trials": 2},
                     latency={"mode": "measured", "resolution": 64, "target_ms": 0.5, "margin": 0.2})
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    assert ctx.target_ms == 0.5 and ctx.budget_ms == pytest.approx(0.4)
    within_budget = RewardSpec(kind="soft", target_ms=0.4)
    for t in ctx.study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.value == pytest.approx(within_budget.reward(t.user_attrs["accuracy"], t.user_attrs["latency_ms"]))
    result = write_outputs(ctx)
    assert (result["target_ms"], result["margin"], result["budget_ms"]) == (0.5, 0.2, pytest.approx(0.4))
    stored = StudyView(optuna.load_study(study_name="margin", storage=db))  # what the API and reports read
    assert (stored.target_ms, stored.budget_ms) == (0.5, pytest.approx(0.4))
    assert best_trial(stored.as_context()).number == best_trial(ctx).number  # type: ignore[union-attr]


def test_a_study_created_before_the_margin_existed_still_resumes() -> None:
    """The resume check hashes the spec; a new field at its default must not change that hash."""
    import hashlib
    import json

    from nas.search._study import spec_digest

    spec = tiny_spec(latency={"confirm": 3})  # every field added later at its default
    before = spec.model_dump(mode="json", exclude={"budget"})
    for added in ("margin", "confirm", "recalibrate_every"):
        del before["latency"][added]  # the spec as it was dumped before the fields existed
    assert spec_digest(spec) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert spec_digest(tiny_spec(latency={"mode": "measured", "resolution": 64, "target_ms": 0.5,
                                          "margin": 0.05})) != spec_digest(spec)


def test_a_margin_outside_0_to_half_is_refused_naming_the_field() -> None:
    from nas.errors import SpecError

    for margin in (-0.1, 0.6):
        with pytest.raises(SpecError, match="latency.margin"):
            tiny_spec(latency={"mode": "measured", "resolution": 64, "target_ms": 0.5, "margin": margin})


def test_netadapt_shrinks_one_layer_per_proposal_inherits_weights_and_ends_with_a_fine_tune(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tiny_spec(name="netadapt", latency={"mode": "measured", "resolution": 128, "target_ms": 0.01},
                     strategy={"name": "netadapt", "options": {"seed": "mobilenetv3-small-0.75", "step": 0.02,
                                                               "max_proposals": 2, "final_epochs": 2}},
                     budget={"trials": 4})
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    trials = ctx.study.trials
    kinds = [t.user_attrs["netadapt_kind"] for t in trials]
    assert kinds[0] == "seed" and kinds[-1] == "final" and set(kinds[1:-1]) == {"adapt"}
    assert len(trials) == 4 and all(t.state is TrialState.COMPLETE for t in trials)
    seed = parse_architecture(trials[0].user_attrs["architecture"])
    first_iteration = [t for t in trials if t.user_attrs["netadapt_iteration"] == 0 and t.number > 0]
    for t in first_iteration:
        child = parse_architecture(t.user_attrs["architecture"])
        widths = lambda a: [(b.mid, b.out) for _, _, b in a.blocks()] + [(a.head.channels, 0)]  # noqa: E731
        assert sum(x != y for x, y in zip(widths(seed), widths(child), strict=True)) >= 1
        assert t.user_attrs["inherited"] > 0, "a proposal starts from the current network's weights"
        assert t.user_attrs["netadapt_estimated_ms"] < trials[0].user_attrs["latency_ms"]
        assert t.user_attrs["epochs_run"] == 1
    assert trials[-1].user_attrs["epochs_run"] == 2
    assert ctx.study.user_attrs["netadapt_state"]["phase"] == "done"


def test_netadapt_resumes_when_the_driver_died_after_recording_a_result_but_before_telling_it(
        db: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Seen in a benchmark: the study had the seed's result, NetAdapt's state still waited for it, and the
    resumed search stopped after that one trial. The resumed strategy now takes the step it missed."""
    from nas.strategies._netadapt import NetAdaptStrategy

    spec = tiny_spec(name="netadapt-lost-tell", latency={"mode": "measured", "resolution": 128, "target_ms": 0.01},
                     strategy={"name": "netadapt", "options": {"seed": "mobilenetv3-small-0.75", "step": 0.02,
                                                               "max_proposals": 1, "final_epochs": 1}},
                     budget={"trials": 3})
    original_tell = NetAdaptStrategy.tell

    def driver_dies(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(NetAdaptStrategy, "tell", driver_dies)
    with pytest.raises(KeyboardInterrupt):
        run_search(spec, storage_url=db, run_dir=tmp_path)
    study = optuna.load_study(study_name="netadapt-lost-tell", storage=db)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert study.user_attrs["netadapt_state"]["asked"] == [0], "the seed's result was never told"
    monkeypatch.setattr(NetAdaptStrategy, "tell", original_tell)
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    kinds = [t.user_attrs["netadapt_kind"] for t in ctx.study.trials]
    assert kinds == ["seed", "adapt", "final"]
    assert ctx.study.user_attrs["netadapt_state"]["phase"] == "done"


def test_a_predicted_search_times_the_table_parts_it_lacks_once_and_predicts_from_them(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The digits head has 10 classes, the space's 1000: a table built for the space lacks every head a
    search on digits uses. Those parts are timed on the device on first use, then predicted from."""
    from nas.latency import LatencyPredictor, network_keys

    spec = tiny_spec(name="predicted", latency={"mode": "predicted", "resolution": 64, "target_ms": 0.5},
                     budget={"trials": 2})
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    trials = ctx.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    predictor = LatencyPredictor.from_database(spec.device)
    for t in trials:
        arch = parse_architecture(t.user_attrs["architecture"])
        assert t.user_attrs["latency_source"] == "predicted" and arch.num_classes == 10
        assert network_keys(arch)[-1].endswith("_n10_hw2") and predictor.missing(arch) == []
        assert t.user_attrs["latency_ms"] == pytest.approx(predictor.predict(arch))


def test_pruned_trials_count_in_the_evolution_population_with_the_value_they_were_pruned_at() -> None:
    """Under a pruner most trials end pruned; a population of complete trials alone never formed."""
    from optuna.distributions import CategoricalDistribution

    from nas.strategies._evolution import RegularizedEvolutionSampler

    space = load_space("mobilenetv3-small")
    dims = space.dimensions()
    distributions = {k: CategoricalDistribution(v) for k, v in dims.items()}
    sampler = RegularizedEvolutionSampler(space, population_size=4, tournament_size=4, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for i, (state, value) in enumerate([(TrialState.COMPLETE, 0.5), (TrialState.PRUNED, 0.9),
                                        (TrialState.PRUNED, 0.2), (TrialState.PRUNED, 0.1)]):
        params = {k: v[i % len(v)] for k, v in dims.items()}
        study.add_trial(optuna.trial.create_trial(state=state, value=value, params=params,
                                                  distributions=distributions))
    child = study.ask(distributions)
    parent = study._storage.get_trial(child._trial_id).system_attrs["evolution"]["parent_trial"]
    assert parent == 1, "the whole population competed; the pruned trial at 0.9 won the tournament"
    assert sum(child.params[k] != study.trials[1].params[k] for k in dims) <= 1


def _space_with_resolutions(resolutions: list[int]) -> dict:  # type: ignore[type-arg]
    return {**load_space("mobilenetv3-small").definition.model_dump(mode="json"), "resolution": resolutions}


def test_a_space_listing_several_resolutions_searches_over_them(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Resolution is a real dimension: each candidate is deployed (and timed) at its own, and proxy-trained
    at the recipe's size scaled the same way, so a smaller input costs accuracy as well as saving time."""
    spec = tiny_spec(name="res", space=_space_with_resolutions([48, 64]), latency={"resolution": None},
                     budget={"trials": 2}, seed=3)  # seed 3: the random sampler picks 64, then 48
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    archs = [parse_architecture(t.user_attrs["architecture"])
             for t in ctx.study.get_trials(states=(TrialState.COMPLETE,))]
    assert {a.resolution for a in archs} == {48, 64}
    assert ctx.reference_resolution == 64
    assert {a.resolution: ctx.proxy_resolution(a) for a in archs} == {48: 24, 64: 32}


def test_a_spec_that_names_the_resolution_deploys_every_candidate_there(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tiny_spec(name="fixed", space=_space_with_resolutions([48, 64]), latency={"resolution": 48},
                     budget={"trials": 2}, seed=3)  # the sampler's choices: 64, then 48
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    archs = [parse_architecture(t.user_attrs["architecture"])
             for t in ctx.study.get_trials(states=(TrialState.COMPLETE,))]
    assert {a.resolution for a in archs} == {48}
    assert all(ctx.proxy_resolution(a) == 32 for a in archs)


def test_leaving_out_the_resolution_of_a_one_resolution_space_resumes_a_study_that_named_it() -> None:
    """Studies made when ``latency.resolution`` was required (default 224) still resume."""
    from nas.search._study import spec_digest

    named = tiny_spec(space="mobilenetv3-small", latency={"resolution": 224})
    assert spec_digest(tiny_spec(space="mobilenetv3-small", latency={"resolution": None})) == spec_digest(named)
    several = _space_with_resolutions([160, 224])
    assert (spec_digest(tiny_spec(space=several, latency={"resolution": None}))
            != spec_digest(tiny_spec(space=several, latency={"resolution": 224})))


def test_the_same_network_at_another_resolution_is_a_new_candidate_not_a_duplicate() -> None:
    """The architecture hash leaves the input resolution out (the weights fit both), but latency and the
    proxy's training differ, so a search over resolutions must evaluate both."""
    from nas.search._study import candidate_key, completed_by_hash

    study = optuna.create_study()
    arch = load_space("mobilenetv3-small").sample(seed=1)
    for resolution in (160, 224):
        doc = arch.with_(resolution=resolution).model_dump(mode="json")
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"arch_hash": arch.hash, "architecture": doc}))
    index = completed_by_hash(study)
    assert set(index) == {candidate_key(arch.hash, 160), candidate_key(arch.hash, 224)}
