"""The canonical architecture document: validation, stable hash, string form, round trips."""

from __future__ import annotations

import json

import pytest

from nas.arch import Architecture, from_string, load_architecture, parse_architecture, to_string
from nas.errors import ArchitectureError, NotFoundError

SMALL = "mobilenetv3-small-1.0"


def doc(name: str = SMALL) -> dict:  # type: ignore[type-arg]
    return load_architecture(name).model_dump(mode="json")


def test_hash_is_stable_across_key_order_and_reloads() -> None:
    a = load_architecture(SMALL)
    shuffled = json.loads(json.dumps(doc(), sort_keys=True)[::1])
    assert parse_architecture(dict(reversed(list(shuffled.items())))).hash == a.hash
    assert a.hash == "a7ac0a42680eb07a"  # changes only when the schema changes; bump SCHEMA_VERSION then
    # (it was 281fc0aa4278bb1d before the reference carried MobileNetV3's published BatchNorm settings)


def test_batchnorm_settings_are_part_of_the_network_but_absent_ones_change_no_existing_document() -> None:
    published = load_architecture(SMALL)
    assert published.bn.eps == 1e-3 and published.bn.momentum == 0.01
    older = doc()
    del older["batchnorm"]  # a document written before the field existed: PyTorch's defaults
    old = parse_architecture(older)
    assert old.hash == "281fc0aa4278bb1d" and old.hash != published.hash
    assert "batchnorm" not in old.model_dump(mode="json") and "_bn" not in to_string(old)
    assert (old.bn.eps, old.bn.momentum) == (1e-5, 0.1)
    # PyTorch's defaults written out are the same network as no field: one encoding
    assert parse_architecture({**older, "batchnorm": {"eps": 1e-5, "momentum": 0.1}}) == old
    assert to_string(published).startswith("mobilenetv3-small@r224_n1000_bne0.001_bnm0.01|")
    assert from_string(to_string(published)) == published


def test_the_builder_gives_every_batchnorm_layer_the_documents_settings() -> None:
    from torch import nn

    from nas.builder import build_model

    for arch, expected in ((load_architecture(SMALL), (1e-3, 0.01)), (load_architecture("mobilenetv2-1.0"),
                                                                       (1e-5, 0.1))):
        norms = [m for m in build_model(arch).modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and {(m.eps, m.momentum) for m in norms} == {expected}


def test_hash_ignores_space_label_and_resolution_but_not_structure() -> None:
    a = load_architecture(SMALL)
    assert a.with_(resolution=128, space=None).hash == a.hash
    assert a.with_(num_classes=10).hash != a.hash
    d = doc()
    d["stages"][1][0]["kernel"] = 5
    assert parse_architecture(d).hash != a.hash


@pytest.mark.parametrize("name", ["mobilenetv3-large-0.75", "mobilenetv2-1.0", "shufflenetv1-g3", "shufflenetv2-0.5"])
def test_string_form_round_trips_exactly(name: str) -> None:
    arch = load_architecture(name)
    text = to_string(arch)
    assert "\n" not in text
    assert from_string(text) == arch
    assert to_string(from_string(text)) == text


def test_json_round_trips_exactly() -> None:
    arch = load_architecture("shufflenetv1-g8")
    assert parse_architecture(json.loads(arch.canonical_json())) == arch


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d["stages"][0][0].update(kernel=4), "stages.0.0.kernel", "3, 5 or 7"),
        (lambda d: d["stages"][0][0].update(activation="gelu"), "stages.0.0.activation", "relu"),
        (lambda d: d.update(resolution=16), "resolution", "greater than or equal to 32"),
        (lambda d: d.update(schema_version=7), "schema_version", "unsupported version"),
        (lambda d: d.update(colour="red"), "colour", "Extra inputs"),
        (lambda d: d["stages"][2][1].update(groups=3), "stages[2][1].groups", "not divisible by groups 3"),
        (lambda d: d["stages"].append([]), "stages", "at least one block"),
    ],
)
def test_invalid_documents_name_the_field_and_the_reason(mutate, field: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    d = doc()
    mutate(d)
    with pytest.raises(ArchitectureError) as err:
        parse_architecture(d)
    assert err.value.field == field
    assert reason in err.value.reason


def test_shuffle_units_enforce_their_shape_rules() -> None:
    d = doc("shufflenetv2-1.0")
    d["stages"][0][1]["out"] = 120  # stride-1 unit must keep its width
    with pytest.raises(ArchitectureError, match="keeps its width"):
        parse_architecture(d)
    d = doc("shufflenetv1-g1")
    d["stages"][0][0]["out"] = 24  # stride-2 V1 unit concatenates its input: must widen
    with pytest.raises(ArchitectureError):
        parse_architecture(d)


def test_unknown_batchnorm_tokens_are_named() -> None:
    text = to_string(load_architecture(SMALL))
    with pytest.raises(ArchitectureError, match="unknown token 'bnx3'"):
        from_string(text.replace("_bnm0.01", "_bnx3"))
    with pytest.raises(ArchitectureError, match="batchnorm.eps"):
        from_string(text.replace("bne0.001", "bne0"))


def test_unknown_string_tokens_are_named() -> None:
    text = to_string(load_architecture(SMALL)).replace("_se_", "_sx_", 1)
    with pytest.raises(ArchitectureError, match="'sx'"):
        from_string(text)
    with pytest.raises(ArchitectureError, match="unknown block type 'zz'"):
        from_string(to_string(load_architecture(SMALL)).replace("mb_c24", "zz_c24", 1))


def test_unknown_names_and_bad_files_are_clear(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError, match="mobilenetv3-small-1.0"):
        load_architecture("mobilenetv9")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ArchitectureError, match="invalid JSON at line 1"):
        load_architecture(str(bad))
    with pytest.raises(NotFoundError):
        load_architecture(str(tmp_path / "missing.json"))


def test_documents_are_immutable() -> None:
    arch = load_architecture(SMALL)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own ValidationError type
        arch.resolution = 64  # type: ignore[misc]
    assert isinstance(arch, Architecture)
