"""The shipped reference networks reproduce torchvision and the papers exactly (shared/REFERENCES.md)."""

from __future__ import annotations

import pytest

from nas.arch import load_architecture
from nas.builder import build_model
from nas.cost import estimate
from nas.spaces import load_space, membership_problems

TORCHVISION_PARAMS = {
    "mobilenetv3-large-1.0": 5_483_032,
    "mobilenetv3-small-1.0": 2_542_856,
    "mobilenetv2-1.0": 3_504_872,
    "shufflenetv2-0.5": 1_366_792,
    "shufflenetv2-1.0": 2_278_604,
    "shufflenetv2-1.5": 3_503_624,
    "shufflenetv2-2.0": 7_393_996,
}
PAPER_MACS_M = {
    "mobilenetv3-large-1.0": 219, "mobilenetv3-small-1.0": 56, "mobilenetv2-1.0": 300,
    "shufflenetv2-0.5": 41, "shufflenetv2-1.0": 146, "shufflenetv2-1.5": 299, "shufflenetv2-2.0": 591,
    "shufflenetv1-g1": 143, "shufflenetv1-g2": 140, "shufflenetv1-g3": 137, "shufflenetv1-g4": 133,
    "shufflenetv1-g8": 137,
}
ALL_REFERENCES = sorted(set(PAPER_MACS_M) | {"mobilenetv3-large-0.75", "mobilenetv3-small-0.75"})


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_built_reference_has_exactly_torchvisions_parameter_count(name: str) -> None:
    model = build_model(load_architecture(name))
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_analytic_parameter_count_equals_torchvision_without_building(name: str) -> None:
    assert estimate(load_architecture(name)).total.params == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PAPER_MACS_M))
def test_reference_macs_are_within_3_percent_of_the_paper(name: str) -> None:
    macs = estimate(load_architecture(name)).total.macs / 1e6
    assert abs(macs - PAPER_MACS_M[name]) / PAPER_MACS_M[name] <= 0.03, f"{name}: {macs:.1f}M"


def test_shufflenet_v1_memory_access_cost_grows_with_groups_at_similar_macs() -> None:
    """ShuffleNet V2's guideline G2: more groups, more memory access, for about the same MACs."""
    mac = [estimate(load_architecture(f"shufflenetv1-g{g}")).total.memory_access_cost for g in (1, 2, 3, 4, 8)]
    assert mac == sorted(mac) and mac[-1] > 2 * mac[0]


@pytest.mark.parametrize("name", ALL_REFERENCES)
def test_every_reference_is_a_member_of_its_search_space(name: str) -> None:
    arch = load_architecture(name)
    assert arch.space is not None
    assert membership_problems(load_space(arch.space), arch) == []


def test_reference_files_are_what_the_generator_writes(repo_root) -> None:  # type: ignore[no-untyped-def]
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("gen", repo_root / "search_spaces/references/generate.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, doc in gen.references().items():
        shipped = json.loads((repo_root / f"search_spaces/references/{name}.json").read_text())
        assert load_architecture(name).model_dump(mode="json") == shipped
        from nas.arch import parse_architecture

        assert parse_architecture(doc).hash == load_architecture(name).hash
