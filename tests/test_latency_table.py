"""Lookup tables: exact enumeration of a space's parts, building, storing, resuming and exporting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.latency import LatencyPredictor, build_table, enumerate_parts, network_keys, network_parts
from nas.latency._cache import get_entries
from nas.latency._fingerprint import fingerprint
from nas.spaces import list_spaces, load_space
from tests.latency_support import QUICK_ORT, sqlite_url, tiny_network, tiny_space


@pytest.mark.parametrize("name", [n for n in list_spaces() if n != "shufflenet"] + ["shufflenet"])
def test_the_enumeration_holds_every_part_the_sampler_produces(name: str) -> None:
    space = load_space(name)
    keys = [p.key for p in enumerate_parts(space, 224)]
    assert len(keys) == len(set(keys))
    known = set(keys)
    for seed in range(40):
        arch = space.sample(seed=seed)
        assert set(network_keys(arch)) <= known, seed


def test_the_enumeration_is_per_resolution_and_has_stems_heads_and_the_call_overhead() -> None:
    space = load_space("mobilenetv3-small")
    parts = enumerate_parts(space, 128)
    kinds = {p.kind for p in parts}
    assert kinds == {"identity", "stem", "block", "head"}
    assert all(p.key.endswith(("_hw128", "identity")) for p in parts if p.kind == "stem")
    assert {p.key for p in parts}.isdisjoint({p.key for p in enumerate_parts(space, 224)} - {"identity"})


def test_network_keys_match_the_parts_the_table_times() -> None:
    arch = load_space("shufflenet").sample(seed=3)
    assert [p.key for p in network_parts(arch, 160)] == network_keys(arch, 160)
    assert network_keys(arch)[0].startswith("stem_c24_k3_s2_relu_pool1_hw224")


def test_building_a_table_times_every_part_once_stores_it_and_exports_a_file(tmp_path: Path) -> None:
    url, space = sqlite_url(tmp_path), tiny_space(tmp_path)
    parts = enumerate_parts(space, 96)
    report = build_table(QUICK_ORT, space, database_url=url, calibration_networks=0,
                         output=tmp_path / "tiny.json")
    assert report.resolution == 96 and report.entries == len(parts) == report.measured
    assert not report.failed and report.reused == 0
    stored = get_entries(url, "quick-ort", fingerprint(QUICK_ORT))
    assert set(stored) == {p.key for p in parts}
    assert all(0 < s.p10_ms <= s.median_ms <= s.p90_ms for s in stored.values())
    doc = json.loads((tmp_path / "tiny.json").read_text())
    assert doc["format"] == "nas-latency-table" and doc["fingerprint"] == report.fingerprint
    assert doc["hardware"]["cpu_model"] and len(doc["entries"]) == len(parts)
    assert all(isinstance(v[4], int) for v in doc["entries"].values())  # weights per part

    again = build_table(QUICK_ORT, space, database_url=url, calibration_networks=0, output=tmp_path / "b.json")
    assert again.measured == 0 and again.reused == len(parts)

    arch = space.sample(seed=1)
    from_db = LatencyPredictor.from_database(QUICK_ORT, database_url=url)
    from_file = LatencyPredictor.from_file(tmp_path / "tiny.json")
    assert from_file.table_sum(arch) == pytest.approx(from_db.table_sum(arch), abs=1e-5)  # 6 decimals in the file


def test_a_fresh_databases_level_is_set_by_the_process_timing_whole_networks(tmp_path: Path) -> None:
    """Users compare figures with a plain loop of a whole network. The canary timed beside small parts ran
    3-5% slower than beside networks (MobileNetV2: 1.324 against 1.255-1.281 ms), which shifted every
    prediction by that much; so a fresh table's reference is the median canary of the calibration networks."""
    import statistics

    from nas.latency import _cache, measure_many
    from nas.latency._lut import calibration_networks

    url, space = sqlite_url(tmp_path), tiny_space(tmp_path)
    _cache._CANARY_REFS.clear()
    build_table(QUICK_ORT, space, database_url=url, calibration_networks=2, output=tmp_path / "t.json")
    networks = measure_many(calibration_networks(space, 96, 2), QUICK_ORT, 96, database_url=url)
    assert all(m.cached for m in networks)
    canaries = [m.conditions["canary_ms"] for m in networks]
    reference = _cache.stored_canary_reference(url, "quick-ort", fingerprint(QUICK_ORT))
    assert reference == pytest.approx(statistics.median(canaries))
    assert [m.conditions["speed_factor"] for m in networks] == pytest.approx([reference / c for c in canaries])


def test_entries_belong_to_their_profile_and_fingerprint(tmp_path: Path) -> None:
    url, space = sqlite_url(tmp_path), tiny_space(tmp_path)
    build_table(QUICK_ORT, space, database_url=url, calibration_networks=0, output=tmp_path / "t.json")
    other = QUICK_ORT.model_copy(update={"name": "quick-ort-2t", "threads": 2})
    assert len(LatencyPredictor.from_database(other, database_url=url)) == 0
    assert len(LatencyPredictor.from_database(QUICK_ORT, database_url=url)) > 0


def test_a_network_outside_the_table_can_have_its_parts_timed_on_demand(tmp_path: Path) -> None:
    from nas.latency import ensure_entries

    url = sqlite_url(tmp_path)
    arch = tiny_network(out=40)
    assert ensure_entries([arch], QUICK_ORT, database_url=url) == len(network_parts(arch)) + 1  # + overhead
    predictor = LatencyPredictor.from_database(QUICK_ORT, database_url=url)
    assert not predictor.missing(arch) and predictor.overhead_ms > 0
    assert ensure_entries([arch], QUICK_ORT, database_url=url) == 0


def test_every_part_of_the_widest_shufflenet_members_has_a_weight_count() -> None:
    """ShuffleNet's heads take up to 2,048 input channels, wider than any stem: the weights term of the
    calibration must still count them (this used to fail validating the head's carrier network)."""
    from nas.cost import estimate
    from nas.latency._parts import part_params

    space = load_space("shufflenet")
    widest = max((space.sample(seed=i) for i in range(40)), key=lambda a: a.stages[-1][-1].out)
    parts = network_parts(widest, 224)
    assert widest.stages[-1][-1].out > 1024
    assert sum(part_params(p) for p in parts) == estimate(widest.with_(resolution=224)).total.params
