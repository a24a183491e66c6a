"""Prediction: sum of table entries (net of the per-call overhead) through a fitted calibration."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nas.cost import estimate
from nas.errors import LatencyError
from nas.latency import (
    Calibration,
    LatencyPredictor,
    calibrate,
    calibration_networks,
    fit_calibration,
    fit_ratio,
    network_keys,
)
from nas.spaces import load_space
from tests.latency_support import QUICK_ORT, sqlite_url, tiny_space


def _predictor(arch_keys: list[str], per_part: float = 1.0, overhead: float = 0.1,
               calibrations: list[Calibration] | None = None) -> LatencyPredictor:
    entries = {k: per_part + overhead for k in arch_keys} | {"identity": overhead}
    return LatencyPredictor("p", "f", entries, calibrations or [])


def test_the_ratio_through_the_call_overhead_is_recovered() -> None:
    assert fit_ratio([1.0, 2.0, 4.0], [2.1, 4.1, 8.1], overhead_ms=0.1) == pytest.approx(2.0)


def test_the_fit_minimises_relative_error_so_small_networks_are_not_sacrificed() -> None:
    xs, ys = [1.0, 2.0, 10.0, 10.0], [1.0, 2.0, 9.0, 12.5]
    assert abs(fit_ratio(xs, ys) * 1 - 1.0) < 0.05  # within 5% on the small network


def test_one_point_gives_its_own_ratio_and_no_point_is_an_error() -> None:
    assert fit_ratio([2.0], [3.1], overhead_ms=0.1) == pytest.approx(1.5)
    with pytest.raises(LatencyError):
        fit_ratio([], [])
    with pytest.raises(LatencyError, match="above the call overhead"):
        fit_ratio([2.0], [0.05], overhead_ms=0.1)


def test_the_intercept_is_the_measured_call_overhead_not_a_fitted_constant() -> None:
    """A fitted intercept extrapolated to networks smaller than every calibration network (ShuffleNet at
    128: +0.32 ms, a 0.99 ms network predicted 50% high); the overhead is measured, so it is pinned."""
    sums, noise = [2.0, 4.0, 6.0, 8.0, 10.0, 3.0], [0.1, -0.1, 0.2, -0.2, 0.1, 0.15]
    points = [[f"n{i}", x, 1.05 * x + 0.02 + e, 0.4 * x] for i, (x, e) in enumerate(zip(sums, noise, strict=True))]
    cal = fit_calibration(points, "s", 128, overhead_ms=0.02)
    assert cal.intercept_ms == 0.02
    assert cal.apply(0.5, 0.2) == pytest.approx(1.05 * 0.5 + 0.02, rel=0.05)  # far below every point


def test_the_weights_term_is_used_only_when_it_predicts_held_out_networks_better() -> None:
    sums, weights = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.5, 2.0, 1.0, 3.0, 1.5, 2.5]
    on_a_line = [[f"n{i}", x, 1.2 * x + 0.1, w] for i, (x, w) in enumerate(zip(sums, weights, strict=True))]
    plain = fit_calibration(on_a_line, "s", 224, overhead_ms=0.1)
    assert plain.ms_per_mparam == 0.0 and plain.slope == pytest.approx(1.2)
    streaming = [[f"n{i}", x, 1.1 * x + 0.3 * w + 0.1, w] for i, (x, w) in enumerate(zip(sums, weights, strict=True))]
    cal = fit_calibration(streaming, "s", 224, overhead_ms=0.1)
    assert (cal.slope, cal.ms_per_mparam, cal.intercept_ms) == (pytest.approx(1.1), pytest.approx(0.3),
                                                                pytest.approx(0.1))
    assert fit_calibration(streaming[:4], "s", 224, overhead_ms=0.1).ms_per_mparam == 0.0  # too few networks


def test_networks_whose_weights_slow_every_kernel_get_the_contention_model() -> None:
    """Seen on a CPU with large shared caches: networks with many weights ran 10-17% slower than their
    table sum, small ones faster; a ratio or a once-per-inference streaming term cannot fit both ends."""
    sums, weights = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 2.5, 4.5], [1.0, 2.5, 1.5, 6.0, 3.0, 7.0, 5.0, 1.2]
    crowded = [[f"n{i}", x, (0.9 + 0.05 * w) * x + 0.01, w] for i, (x, w) in enumerate(zip(sums, weights, strict=True))]
    cal = fit_calibration(crowded, "s", 224, overhead_ms=0.01)
    assert cal.model == "contention" and cal.uses_weights
    assert (cal.slope, cal.slope_per_mparam, cal.ms_per_mparam) == (pytest.approx(0.9), pytest.approx(0.05), 0.0)
    assert cal.apply(10.0, 8.0) == pytest.approx(1.3 * 10.0 + 0.01)  # beyond every calibration network
    assert Calibration.from_dict(cal.to_dict()) == cal
    older = {k: v for k, v in cal.to_dict().items() if k != "slope_per_mparam"}  # stored before the model existed
    assert Calibration.from_dict(older).model == "ratio"


def test_a_richer_model_that_fits_noise_is_refused() -> None:
    """On points that lie on a ratio up to noise, neither two-term model lowers the leave-one-out error."""
    sums, weights = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.5, 2.0, 1.0, 3.0, 1.5, 2.5]
    noise = [0.01, -0.012, 0.008, -0.01, 0.011, -0.009]
    noisy = [[f"n{i}", x, 1.2 * x * (1 + e), w] for i, (x, w, e) in enumerate(zip(sums, weights, noise, strict=True))]
    assert fit_calibration(noisy, "s", 224).model == "ratio"


def test_prediction_is_the_calibrated_sum_of_entries_net_of_the_call_overhead() -> None:
    arch = load_space("mobilenetv3-small").sample(seed=0)
    keys = network_keys(arch)
    cal = Calibration(1.5, 0.2, "mobilenetv3-small", 224)
    predictor = _predictor(keys, calibrations=[cal])
    assert predictor.table_sum(arch) == pytest.approx(len(keys))
    assert predictor.predict(arch) == pytest.approx(1.5 * len(keys) + 0.2)
    with_weights = LatencyPredictor("p", "f", {k: 1.1 for k in keys} | {"identity": 0.1},
                                    [Calibration(1.5, 0.2, "mobilenetv3-small", 224, ms_per_mparam=0.5)],
                                    params={k: 200_000 for k in keys})
    assert with_weights.weights_m(arch) == pytest.approx(0.2 * len(keys))
    assert with_weights.predict(arch) == pytest.approx(1.5 * len(keys) + 0.5 * 0.2 * len(keys) + 0.2)


def test_the_space_calibration_wins_then_the_all_spaces_one_then_none() -> None:
    arch = load_space("mobilenetv3-small").sample(seed=0)
    n = len(network_keys(arch))
    own, anyspace = Calibration(2.0, 0.0, "mobilenetv3-small", 224), Calibration(3.0, 0.0, "*", 224)
    assert _predictor(network_keys(arch), calibrations=[own, anyspace]).predict(arch) == pytest.approx(2 * n)
    assert _predictor(network_keys(arch), calibrations=[anyspace]).predict(arch) == pytest.approx(3 * n)
    raw = _predictor(network_keys(arch), overhead=0.1)
    assert raw.predict(arch) == pytest.approx(n + 0.1)  # uncalibrated: one call overhead per network


def test_a_network_with_parts_missing_from_the_table_gets_an_error_saying_how_to_build_it() -> None:
    arch = load_space("mobilenetv3-small").sample(seed=0)
    predictor = _predictor(network_keys(arch)[:-1])
    with pytest.raises(LatencyError, match=r"no entry for 1 part.*nas latency profile --device p "
                                           r"--space mobilenetv3-small --resolution 224"):
        predictor.predict(arch)
    with pytest.raises(LatencyError, match="resolution 160"):
        _predictor(network_keys(arch)).predict(arch, 160)


def test_predicting_any_member_of_a_space_takes_well_under_a_millisecond() -> None:
    space = load_space("mobilenetv3-large")
    archs = [space.sample(seed=s) for s in range(50)]
    predictor = _predictor(sorted({k for a in archs for k in network_keys(a)}),
                           calibrations=[Calibration(1.1, 0.3, "mobilenetv3-large", 224)])
    start = time.perf_counter()
    for _ in range(10):
        for arch in archs:
            predictor.predict(arch)
    per_prediction = (time.perf_counter() - start) / 500
    assert per_prediction < 0.5e-3


def test_calibrating_on_a_few_small_networks_fits_and_stores_the_ratio(tmp_path: Path) -> None:
    url, space = sqlite_url(tmp_path), tiny_space(tmp_path)
    cal = calibrate(QUICK_ORT, space, 96, networks=4, database_url=url)
    assert cal.scope == "tiny" and cal.resolution == 96 and len(cal.points) == 4 and cal.slope > 0
    predictor = LatencyPredictor.from_database(QUICK_ORT, database_url=url)
    assert {(c.scope, c.resolution) for c in predictor.calibrations} == {("tiny", 96), ("*", 96)}
    assert cal.intercept_ms == pytest.approx(predictor.overhead_ms) and cal.intercept_ms > 0
    for arch_hash, table_sum, measured, weights in cal.points:
        assert cal.apply(table_sum, weights) == pytest.approx(measured, rel=0.5), arch_hash
    arch = calibration_networks(space, 96, 4)[0]  # the lightest calibration network
    assert predictor.predict(arch) == pytest.approx(cal.apply(cal.points[0][1], cal.points[0][3]))
    assert cal.points[0][3] == pytest.approx(estimate(arch).total.params / 1e6)


def test_a_database_from_before_the_contention_model_gains_its_column(tmp_path: Path) -> None:
    """The cache tables are made by ``create_all``, which never alters a table: the column is added once."""
    from sqlalchemy import text

    from nas.latency import _cache
    from nas.storage import engine_for

    url = f"sqlite:///{tmp_path / 'old.db'}"
    _cache.ensure_tables(url)
    with engine_for(url).begin() as conn:  # the table as it was before 2026-11-28
        conn.execute(text("ALTER TABLE latency_calibrations_v2 DROP COLUMN slope_per_mparam"))
    _cache.ensure_tables.cache_clear()  # a new process
    _cache.put_calibration(url, "p", "f", "s", 224, slope=1.1, intercept_ms=0.01, points=[], slope_per_mparam=0.05)
    (stored,) = _cache.get_calibrations(url, "p", "f")
    assert Calibration.from_dict(stored).model == "contention" and stored["slope_per_mparam"] == 0.05


@pytest.mark.parametrize("space_name", ["mobilenetv2", "shufflenet"])
def test_calibration_networks_span_the_weight_range_that_predictions_are_asked_for(space_name: str) -> None:
    """Random calibration networks left heavier test networks outside their range, and the fitted weight
    terms extrapolated there (MobileNetV2 at 224: 88% within +-10%); the picks bracket the space."""
    space = load_space(space_name)
    picks = calibration_networks(space, 224, 24)
    weights = [estimate(a).total.params for a in picks]
    members = [estimate(space.sample(seed=i)).total.params for i in range(100)]
    assert len({a.hash for a in picks}) == 24 and weights == sorted(weights)
    outside = [w for w in members if not weights[0] <= w <= weights[-1]]
    assert len(outside) <= 2, outside  # random picks: ShuffleNet's 24 spanned 1.9-7.0 M, its members 0.3-14.5 M
    assert picks == calibration_networks(space, 224, 24)  # the same networks every time: measurements are cached
