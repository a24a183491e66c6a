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
        (lambda d: d.update(reward={"kind": "pareto"}, strategy={"name": "netadapt"}), "strategy.name",
         "Pareto"),
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
    assert spec.strategy.options == {"population_size": 8, "tournament_size": 3}
