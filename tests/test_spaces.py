"""Search spaces: loading, clear errors for malformed files, sampling, mutation and membership."""

from __future__ import annotations

import random

import pytest
import yaml

from nas.arch import load_architecture
from nas.errors import ArchitectureError, NotFoundError, SpaceError
from nas.spaces import check_member, list_spaces, load_space, membership_problems

SPACES = ["mobilenetv2", "mobilenetv3-large", "mobilenetv3-small", "shufflenet"]


def test_the_shipped_spaces_are_listed() -> None:
    assert set(SPACES) <= set(list_spaces())


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_reproducible_by_seed_and_stays_in_the_space(name: str) -> None:
    space = load_space(name)
    a, b = space.sample(seed=3), space.sample(seed=3)
    assert a == b and a.hash == b.hash
    rng = random.Random(0)
    hashes = set()
    for _ in range(100):
        arch = space.sample(rng=rng)
        assert membership_problems(space, arch) == []
        hashes.add(arch.hash)
    assert len(hashes) > 90, "sampling should rarely repeat in a space this large"


@pytest.mark.parametrize("name", SPACES)
def test_mutation_changes_exactly_one_active_choice(name: str) -> None:
    space = load_space(name)
    rng = random.Random(1)
    for _ in range(30):
        parent = space.sample_choices(rng)
        child = space.mutate(parent, rng)
        changed = [k for k in parent if parent[k] != child[k]]
        assert len(changed) == 1
        assert changed[0] in space.active_dimensions(parent)
        assert membership_problems(space, space.decode(child)) == []


def test_shufflenet_space_offers_both_unit_types_and_all_group_counts() -> None:
    dims = load_space("shufflenet").dimensions()
    assert dims["s0.b0.block"] == ["shufflev1", "shufflev2"]
    assert dims["s1.b0.groups"] == [1, 2, 3, 4, 8]
    rng = random.Random(5)
    seen = {b.groups for _ in range(200) for _, _, b in load_space("shufflenet").sample(rng=rng).blocks()}
    assert seen == {1, 2, 3, 4, 8}


def test_a_reference_outside_a_space_is_rejected_with_the_field() -> None:
    with pytest.raises(ArchitectureError) as err:
        check_member(load_space("mobilenetv3-small"), load_architecture("mobilenetv3-large-1.0"))
    assert "stages" in err.value.field
    problems = membership_problems(load_space("mobilenetv2"), load_architecture("mobilenetv3-small-1.0"))
    assert any(f == "stem.activation" for f, _ in problems)


def write_space(tmp_path, mutate) -> str:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(open(load_space("mobilenetv3-small").source).read())
    mutate(data)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d["stages"][1].update(kernel=[4]), "stages.1.kernel.0", "3, 5 or 7"),
        (lambda d: d["stages"][1].update(depth=[]), "stages.1.depth", "at least one choice"),
        (lambda d: d["stages"][1].update(depth=[0, 2]), "stages.1.depth", "between 1 and 16"),
        (lambda d: d["stages"][1].update(activation=["mish"]), "stages.1.activation.0", "relu"),
        (lambda d: d["stages"][1].update(expansion=[3, 3]), "stages.1.expansion", "unique"),
        (lambda d: d.pop("stem"), "stem", "Field required"),
        (lambda d: d.update(width=[0]), "width", "(0, 4]"),
        (lambda d: d["stages"][1].update(block=["shufflev2"], stride=1), "stages.1.stride", "stride 2"),
        (lambda d: d.update(unknown_key=1), "unknown_key", "Extra inputs"),
    ],
)
def test_malformed_space_errors_name_file_field_and_reason(tmp_path, mutate, field: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = write_space(tmp_path, mutate)
    with pytest.raises(SpaceError) as err:
        load_space(path)
    assert err.value.source == path
    assert err.value.field == field
    assert reason in err.value.reason
    assert str(err.value).startswith(path)


def test_invalid_yaml_and_unknown_space_names_are_clear(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [\n")
    with pytest.raises(SpaceError, match="invalid YAML"):
        load_space(str(bad))
    with pytest.raises(NotFoundError, match="shufflenet"):
        load_space("resnet")


@pytest.mark.parametrize(("name", "published"), [
    ("mobilenetv3-small", (1e-3, 0.01)), ("mobilenetv3-large", (1e-3, 0.01)),
    ("mobilenetv2", (1e-5, 0.1)), ("shufflenet", (1e-5, 0.1)),
])
def test_members_carry_their_familys_published_batchnorm_settings(name: str, published: tuple[float, float]) -> None:
    arch = load_space(name).sample(seed=1)
    assert (arch.bn.eps, arch.bn.momentum) == published
    assert ("batchnorm" in arch.model_dump(mode="json")) == (published != (1e-5, 0.1))


def test_a_mobilenetv3_network_with_other_batchnorm_settings_is_not_a_member() -> None:
    space = load_space("mobilenetv3-small")
    arch = load_architecture("mobilenetv3-small-1.0").with_(batchnorm=None)
    assert membership_problems(space, arch) == [
        ("batchnorm", "the space's networks use BatchNorm eps 0.001, momentum 0.01; this one eps 1e-05, momentum 0.1")]
