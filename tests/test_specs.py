"""Search specs: the shipped examples load, and every malformed spec names its field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.errors import SpecError
from nas.search import load_spec, parse_spec

SPECS = sorted((Path(__file__).resolve().parents[1] / "search_spaces" / "specs").glob("*.yaml"))


def valid() -> dict:  # type: ignore[type-arg]
    return {"name": "x", "space": "mobilenetv3-small", "latency": {"target_ms": 2.0}}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.latency.resolution is None or spec.latency.resolution >= 32


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda d: d["latency"].update(target_ms=float("nan")), "latency.target_ms", "finite"),
        (lambda d: d["latency"].update(target_ms=-1), "latency.target_ms", "> 0"),
        (lambda d: d["latency"].update(target_reference="mobilenetv3-small-0.75"), "latency.target_ms",
         "exactly one"),
        (lambda d: d.update(budget={"trials": None}), "budget.trials", "budget"),
        (lambda d: d.update(budget={"trials": 0}), "budget.trials", "greater than or equal to 1"),
        (lambda d: d.update(strategy={"name": "bayes"}), "strategy.name", "random"),
        (lambda d: d.update(reward={"kind": "pareto"},
                            strategy={"name": "netadapt", "options": {"seed": "mobilenetv3-small-1.0"}}),
         "strategy.name", "Pareto"),
        (lambda d: d.update(reward={"kind": "pareto"}, strategy={"name": "evolution"}), "strategy.name", "Pareto"),
        (lambda d: d.update(reward={"kind": "custom", "alpha": -0.1}), "reward.beta", "required for kind=custom"),
        (lambda d: d.update(reward={"kind": "hard", "beta": -0.5}), "reward.beta", "only for kind=custom"),
        (lambda d: d.update(proxy={"dataset": {"kind": "cifar10"}}), "proxy.dataset.path", "required"),
        (lambda d: d.update(name="a b"), "name", "pattern"),
        (lambda d: d.update(surprise=1), "surprise", "Extra inputs"),
    ],
)
def test_a_malformed_spec_names_the_field_and_the_reason(change, field: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    doc = valid()
    change(doc)
    with pytest.raises(SpecError) as err:
        parse_spec(doc, "spec.yaml")
    assert err.value.field == field, err.value
    assert reason in err.value.reason


def test_missing_and_unparseable_spec_files_are_clear(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        load_spec(bad)


@pytest.mark.parametrize(("strategy", "options", "field"), [
    ({"name": "nsga2"}, {"population_size": "abc"}, "strategy.options.population_size"),
    ({"name": "evolution"}, {"population_size": -3}, "strategy.options.population_size"),
    ({"name": "tpe"}, {"n_startup_trial": 5}, "strategy.options.n_startup_trial"),
    ({"name": "random"}, {"population_size": 2}, "strategy.options.population_size"),
    ({"name": "netadapt"}, {"step": 0.02}, "strategy.options.seed"),
    ({"name": "netadapt"}, {"seed": "mobilenetv3-small-1.0", "step": 1.5}, "strategy.options.step"),
    ({"name": "netadapt"}, {"seed": "mobilenetv3-small-1.0", "selection": "fastest"}, "strategy.options.selection"),
])
def test_strategy_options_are_checked_per_strategy_and_a_bad_one_names_its_key(strategy, options, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as err:
        parse_spec({**valid(), "strategy": {**strategy, "options": options}}, "body")
    assert err.value.field == field


def test_good_strategy_options_are_kept_as_given() -> None:
    spec = parse_spec({**valid(), "strategy": {"name": "evolution", "options": {"population_size": 8,
                                                                               "tournament_size": 3}}}, "body")
    assert spec.model_dump(mode="json")["strategy"]["options"] == {"population_size": 8, "tournament_size": 3}


def test_budget_dependent_defaults_are_filled_in_one_place_and_the_strategy_gets_them() -> None:
    from nas.strategies import make_strategy

    cases = {"tpe": {"n_startup_trials": 10}, "nsga2": {"population_size": 13},
             "evolution": {"population_size": 13, "tournament_size": 3}, "random": {}}
    for name, expected in cases.items():
        spec = parse_spec({**valid(), "budget": {"trials": 40}, "proxy": {"pruner": {"name": "none"}},
                           "strategy": {"name": name}}, "body")
        strategy = make_strategy(spec)
        assert strategy.name == name and type(strategy.options) is type(spec.strategy.options)
        assert strategy.options.model_dump() == expected, name
    given = parse_spec({**valid(), "strategy": {"name": "tpe", "options": {"n_startup_trials": 0}}}, "body")
    assert make_strategy(given).options.model_dump() == {"n_startup_trials": 0}


def test_a_cross_field_rule_is_checked_with_the_budgets_default() -> None:
    doc = {**valid(), "strategy": {"name": "evolution", "options": {"tournament_size": 8}}}
    assert parse_spec({**doc, "budget": {"trials": 60}}, "body")  # population 20
    with pytest.raises(SpecError) as err:
        parse_spec({**doc, "budget": {"trials": 12}}, "body")  # population 4
    assert err.value.field == "strategy.options.tournament_size" and "defaults to 4" in err.value.reason


def test_a_new_strategy_is_one_class_with_its_name_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import Field

    from nas.strategies import SampledStrategy, StrategyOptions, _registry, make_strategy, register, strategy_names

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))

    class GridOptions(StrategyOptions):
        points: int = Field(default=3, ge=2)

    @register
    class GridStrategy(SampledStrategy[GridOptions]):
        name = "grid"
        options_model = GridOptions

        def create_sampler(self, ctx):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    assert "grid" in strategy_names()
    spec = parse_spec({**valid(), "strategy": {"name": "grid", "options": {"points": 5}}}, "body")
    assert isinstance(make_strategy(spec), GridStrategy) and make_strategy(spec).options.points == 5
    with pytest.raises(SpecError) as err:
        parse_spec({**valid(), "strategy": {"name": "grid", "options": {"points": 1}}}, "body")
    assert err.value.field == "strategy.options.points"


def test_only_a_local_spec_may_name_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text((SPECS[0].parents[1] / "references" / "mobilenetv3-small-1.0.json").read_text())
    doc = {**valid(), "strategy": {"name": "netadapt", "options": {"seed": str(seed)}},
           "proxy": {"dataset": {"kind": "cifar10", "path": str(tmp_path)}}}
    local = parse_spec(doc, "spec.yaml", local_files=True)
    assert local.strategy.options.seed_architecture.hash  # type: ignore[attr-defined]
    with pytest.raises(SpecError) as err:
        parse_spec(doc, "body")
    assert err.value.field == "strategy.options.seed" and "server files are not read" in err.value.reason

    from nas.settings import get_settings

    monkeypatch.setenv("NAS_DATA_DIRS", f"{tmp_path.parent}")
    get_settings.cache_clear()
    try:
        named = {**doc, "strategy": {"name": "netadapt", "options": {"seed": "mobilenetv3-small-1.0"}}}
        assert parse_spec(named, "body").proxy.dataset.path == tmp_path
        with pytest.raises(SpecError) as err:
            parse_spec({**named, "proxy": {"dataset": {"kind": "cifar10", "path": "/etc"}}}, "body")
        assert err.value.field == "proxy.dataset.path" and str(tmp_path.parent) in err.value.reason
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("supernet", ["/etc/passwd", "../../etc/passwd", "runs/supernets/x/supernet.pt", "x.pt"])
def test_a_spec_through_the_service_names_a_supernet_never_a_file(supernet: str) -> None:
    document = {**valid(), "proxy": {"supernet": supernet}}
    with pytest.raises(SpecError, match=r"proxy\.supernet: through the service, name a supernet"):
        parse_spec(document)
    assert parse_spec({**valid(), "proxy": {"supernet": "digits-mobilenetv2"}}).proxy.supernet == "digits-mobilenetv2"
    assert parse_spec(document, local_files=True).proxy.supernet == supernet  # `nas run` may name a file
