"""Rewards: the MnasNet reward as the paper defines it, its presets and validation, Pareto fronts."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys

import pytest

from nas.errors import RewardError
from nas.rewards import RewardKind, RewardSpec, hypervolume, mnas_reward, pareto_front, parse_reward_spec


def soft(target: float = 80.0) -> RewardSpec:
    return RewardSpec(kind="soft", target_ms=target)


def hard(target: float = 80.0) -> RewardSpec:
    return RewardSpec(kind="hard", target_ms=target)


# -- the MnasNet reward ------------------------------------------------------------------------------
def test_a_network_exactly_at_the_target_is_rewarded_with_its_accuracy() -> None:
    assert soft().reward(0.75, 80.0) == 0.75
    assert hard().reward(0.75, 80.0) == 0.75


def test_soft_doubling_latency_over_the_target_multiplies_the_reward_by_2_to_the_minus_0_07() -> None:
    spec = soft(50.0)
    assert spec.reward(0.8, 100.0) / spec.reward(0.8, 50.0) == pytest.approx(2 ** -0.07, rel=1e-12)
    assert spec.reward(0.8, 200.0) / spec.reward(0.8, 100.0) == pytest.approx(2 ** -0.07, rel=1e-12)


def test_soft_halving_latency_under_the_target_raises_the_reward_by_2_to_the_0_07() -> None:
    spec = soft(50.0)
    assert spec.reward(0.8, 25.0) == pytest.approx(0.8 * 2 ** 0.07, rel=1e-12)


def test_soft_reward_trades_about_five_percent_accuracy_for_double_latency() -> None:
    assert 1 - 2 ** -0.07 == pytest.approx(0.0474, abs=1e-4)


def test_hard_reward_ignores_latency_within_the_target() -> None:
    assert hard().reward(0.7, 1.0) == 0.7
    assert hard().reward(0.7, 79.99) == 0.7


def test_hard_reward_divides_accuracy_by_the_overshoot_ratio() -> None:
    assert hard(80.0).reward(0.7, 160.0) == pytest.approx(0.35, rel=1e-12)
    assert hard(80.0).reward(0.9, 240.0) == pytest.approx(0.3, rel=1e-12)


@pytest.mark.parametrize(("acc", "lat", "target", "alpha", "beta"), [
    (0.752, 78.0, 75.0, -0.07, -0.07), (0.752, 70.0, 75.0, -0.07, -0.07), (0.674, 12.0, 10.0, -0.15, -0.15),
    (0.6, 30.0, 40.0, 0.0, -1.0), (0.6, 50.0, 40.0, 0.0, -1.0), (0.5, 5.0, 4.0, -0.2, -0.5),
])
def test_reward_is_accuracy_times_latency_ratio_to_the_power_alpha_within_and_beta_beyond(
        acc: float, lat: float, target: float, alpha: float, beta: float) -> None:
    w = alpha if lat <= target else beta
    expected = acc * (lat / target) ** w
    assert mnas_reward(acc, lat, target, alpha, beta) == pytest.approx(expected, rel=1e-15)
    custom = RewardSpec(kind="custom", target_ms=target, alpha=alpha, beta=beta)
    assert custom.reward(acc, lat) == pytest.approx(expected, rel=1e-15)


def test_presets_fix_alpha_and_beta_as_in_the_mnasnet_paper() -> None:
    assert soft().weights == (-0.07, -0.07)
    assert hard().weights == (0.0, -1.0)
    assert RewardSpec(kind="custom", target_ms=5, alpha=-0.15, beta=-0.15).weights == (-0.15, -0.15)


# -- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [0.0, -1.0, math.inf, math.nan])
def test_target_must_be_positive_and_finite_and_the_error_names_the_field(target: float) -> None:
    with pytest.raises(RewardError) as info:
        parse_reward_spec({"kind": "soft", "target_ms": target})
    assert info.value.field == "target_ms"


def test_scalar_rewards_require_a_target() -> None:
    with pytest.raises(RewardError, match="target_ms: required for kind=hard"):
        RewardSpec(kind="hard")


def test_a_non_numeric_target_is_reported_against_its_field() -> None:
    with pytest.raises(RewardError) as info:
        parse_reward_spec({"kind": "soft", "target_ms": "fast"})
    assert info.value.field == "target_ms"


def test_custom_weights_need_both_alpha_and_beta() -> None:
    with pytest.raises(RewardError, match="beta: required for kind=custom"):
        RewardSpec(kind="custom", target_ms=10, alpha=-0.1)


def test_presets_refuse_explicit_weights_instead_of_silently_ignoring_them() -> None:
    with pytest.raises(RewardError, match="alpha: only for kind=custom"):
        RewardSpec(kind="soft", target_ms=10, alpha=-0.2)


def test_weights_must_be_finite() -> None:
    with pytest.raises(RewardError, match="alpha"):
        RewardSpec(kind="custom", target_ms=10, alpha=math.nan, beta=-0.1)


@pytest.mark.parametrize("latency", [0.0, -3.0, math.inf])
def test_latency_must_be_positive_and_finite(latency: float) -> None:
    with pytest.raises(RewardError) as info:
        soft().reward(0.7, latency)
    assert info.value.field == "latency_ms"


def test_unknown_fields_and_kinds_are_named() -> None:
    with pytest.raises(RewardError) as info:
        parse_reward_spec({"kind": "soft", "target_ms": 5, "gamma": 1})
    assert info.value.field == "gamma"
    with pytest.raises(RewardError) as info:
        parse_reward_spec({"kind": "softer", "target_ms": 5})
    assert info.value.field == "kind"


# -- objectives for the sampler ---------------------------------------------------------------------
def test_scalar_kinds_give_one_objective_to_maximise() -> None:
    spec = soft(50.0)
    assert spec.directions == ["maximize"]
    assert spec.objectives(0.8, 100.0) == (spec.reward(0.8, 100.0),)


def test_pareto_kind_gives_accuracy_and_latency_and_has_no_scalar_reward() -> None:
    spec = RewardSpec(kind=RewardKind.pareto)
    assert spec.directions == ["maximize", "minimize"]
    assert spec.objectives(0.8, 12.5) == (0.8, 12.5)
    with pytest.raises(RewardError, match="kind"):
        spec.reward(0.8, 12.5)


def test_constraint_is_feasible_exactly_within_the_target() -> None:
    spec = RewardSpec(kind="pareto", target_ms=20.0)
    assert spec.constraint(15.0) == -5.0
    assert spec.constraint(20.0) == 0.0
    assert spec.constraint(25.0) == 5.0
    assert RewardSpec(kind="pareto").constraint(1e6) == 0.0


def test_rewards_module_imports_neither_torch_nor_numpy() -> None:
    code = "import sys, nas.rewards; sys.exit(int('torch' in sys.modules or 'numpy' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- Pareto fronts ----------------------------------------------------------------------------------
def dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    """q dominates p: at least as accurate and as fast, strictly better in one."""
    return q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])


def test_pareto_front_keeps_non_dominated_points_ordered_by_latency() -> None:
    points = [(0.70, 10.0), (0.80, 20.0), (0.75, 25.0), (0.60, 5.0), (0.90, 30.0), (0.65, 12.0)]
    assert pareto_front(points) == [(0.60, 5.0), (0.70, 10.0), (0.80, 20.0), (0.90, 30.0)]


def test_pareto_front_of_nothing_is_empty_and_of_one_point_is_that_point() -> None:
    assert pareto_front([]) == []
    assert pareto_front([(0.5, 3.0)]) == [(0.5, 3.0)]


def test_equal_latency_keeps_only_the_more_accurate_and_exact_duplicates_both_stay() -> None:
    assert pareto_front([(0.7, 10.0), (0.8, 10.0)]) == [(0.8, 10.0)]
    assert pareto_front([(0.8, 10.0), (0.8, 12.0)]) == [(0.8, 10.0)]
    assert pareto_front([(0.8, 10.0), (0.8, 10.0)]) == [(0.8, 10.0), (0.8, 10.0)]


def test_pareto_front_reads_arbitrary_items_through_a_key() -> None:
    trials = [{"id": 1, "acc": 0.7, "ms": 9.0}, {"id": 2, "acc": 0.6, "ms": 11.0}, {"id": 3, "acc": 0.9, "ms": 20.0}]
    front = pareto_front(trials, key=lambda t: (t["acc"], t["ms"]))
    assert [t["id"] for t in front] == [1, 3]


def test_pareto_front_matches_the_definition_on_random_points() -> None:
    rng = random.Random(7)
    for _ in range(200):
        points = [(rng.choice([0.5, 0.6, 0.7, 0.8]), float(rng.randint(1, 8))) for _ in range(rng.randint(1, 12))]
        expected = [p for i, p in enumerate(points)
                    if not any(dominated(p, q) for j, q in enumerate(points) if j != i)]
        front = pareto_front(points)
        assert sorted(front) == sorted(expected)
        assert [p[1] for p in front] == sorted(p[1] for p in front)


def test_non_finite_points_are_rejected_with_their_index() -> None:
    with pytest.raises(RewardError, match=r"points\[1\]\.latency_ms"):
        pareto_front([(0.5, 1.0), (0.6, math.nan)])


# -- hypervolume ------------------------------------------------------------------------------------
def test_hypervolume_of_a_staircase_is_the_sum_of_its_rectangles() -> None:
    # (acc, lat) = (0.7, 10), (0.8, 20) against reference (0.5, 30): 10 * 0.2 + 10 * 0.3
    assert hypervolume([(0.7, 10.0), (0.8, 20.0)], (0.5, 30.0)) == pytest.approx(5.0)


def test_dominated_and_out_of_reference_points_add_no_hypervolume() -> None:
    base = hypervolume([(0.7, 10.0), (0.8, 20.0)], (0.5, 30.0))
    assert hypervolume([(0.7, 10.0), (0.8, 20.0), (0.6, 15.0), (0.9, 40.0), (0.4, 1.0)], (0.5, 30.0)) == base
    assert hypervolume([], (0.5, 30.0)) == 0.0


def test_hypervolume_matches_a_grid_count_on_random_integer_fronts() -> None:
    rng = random.Random(3)
    for _ in range(30):
        points = [(float(rng.randint(1, 9)), float(rng.randint(1, 9))) for _ in range(rng.randint(1, 6))]
        ref = (0.0, 10.0)
        cells = sum(1 for a, b in itertools.product(range(10), range(10))
                    if any(p[0] >= a + 1 and p[1] <= b for p in points))
        assert hypervolume(points, ref) == pytest.approx(float(cells))
