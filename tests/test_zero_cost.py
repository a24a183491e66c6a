"""Zero-cost proxies: deterministic, side-effect free, and sensitive to what each one claims to measure."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nas.arch import Architecture, load_architecture, parse_architecture
from nas.builder import build_model
from nas.data import DatasetSpec, ProxyData, load_dataset
from nas.errors import NotFoundError
from nas.proxies import ZERO_COST_PROXIES, grad_norm, naswot, proxy_batch, synflow, zero_cost_score


def tiny(width: int = 8, activation: str = "relu", se: bool = False) -> Architecture:
    block = {"type": "mbconv", "stride": 2, "kernel": 3, "se": se, "activation": activation}
    return parse_architecture({
        "num_classes": 10, "stem": {"channels": width, "stride": 2, "activation": activation},
        "stages": [[{**block, "out": 2 * width, "mid": 4 * width}], [{**block, "out": 4 * width, "mid": 8 * width}]],
        "head": {"hidden": 32, "activation": activation, "dropout": 0.2},
    })


@pytest.fixture(scope="module")
def data() -> ProxyData:
    return load_dataset(DatasetSpec(resolution=16, subset=200))


@pytest.fixture(scope="module")
def batch(data: ProxyData) -> tuple[torch.Tensor, torch.Tensor]:
    return proxy_batch(data, batch_size=32, seed=0)


def seeded_model(arch: Architecture, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(arch)


def zero_all_convs(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
    return model


@pytest.mark.parametrize("name", sorted(ZERO_COST_PROXIES))
def test_a_proxy_gives_the_same_score_for_the_same_seed(name: str, data: ProxyData) -> None:
    arch = tiny(se=True, activation="hswish")
    first = zero_cost_score(arch, data, name, batch_size=32, seed=0, threads=1)
    assert math.isfinite(first)
    assert zero_cost_score(arch, data, name, batch_size=32, seed=0, threads=1) == first
    assert zero_cost_score(arch, data, name, batch_size=32, seed=1, threads=1) != first


@pytest.mark.parametrize("name", sorted(ZERO_COST_PROXIES))
def test_a_proxy_leaves_the_scored_model_untouched(name: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = seeded_model(tiny(se=True))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ZERO_COST_PROXIES[name](model, *batch)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert next(model.parameters()).dtype == torch.float32


def test_the_proxy_batch_is_fixed_and_class_stratified(data: ProxyData) -> None:
    x, y = proxy_batch(data, batch_size=30, seed=0)
    x2, _ = proxy_batch(data, batch_size=30, seed=0)
    assert torch.equal(x, x2) and y.bincount(minlength=10).tolist() == [3] * 10


def test_an_unknown_proxy_is_named_with_the_known_ones(data: ProxyData) -> None:
    with pytest.raises(NotFoundError, match="grad_norm"):
        zero_cost_score(tiny(), data, "snip")


# -- synflow ------------------------------------------------------------------------------------------
def test_synflow_grows_with_width_because_a_wider_network_has_more_paths(batch: tuple[torch.Tensor, ...]) -> None:
    narrow = synflow(seeded_model(tiny(width=8)), *batch)
    wide = synflow(seeded_model(tiny(width=16)), *batch)
    assert wide > 2 * narrow > 0


def test_synflow_ranks_the_wider_published_mobilenet_higher(data: ProxyData) -> None:
    small = {w: zero_cost_score(load_architecture(f"mobilenetv3-small-{w}"), data, "synflow", 8, threads=1)
             for w in ("0.75", "1.0")}
    assert small["1.0"] > small["0.75"]


def test_synflow_is_zero_when_a_layer_has_collapsed(batch: tuple[torch.Tensor, ...]) -> None:
    model = seeded_model(tiny())
    with torch.no_grad():
        model.blocks[1].body[-1][0].weight.zero_()  # type: ignore[index,union-attr]
    assert synflow(model, *batch) == 0.0


def test_synflow_is_data_free_and_only_reads_the_input_shape(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = seeded_model(tiny())
    x, y = batch
    assert synflow(model, x, y) == synflow(model, torch.randn_like(x), y.flip(0))


# -- NASWOT -------------------------------------------------------------------------------------------
def test_naswot_separates_an_initialised_network_from_one_whose_inputs_all_look_alike(
        batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    healthy = naswot(seeded_model(tiny()), *batch)
    dead = naswot(zero_all_convs(seeded_model(tiny())), *batch)
    assert math.isfinite(healthy) and dead < healthy


def test_naswot_reads_hswish_units_as_on_where_their_input_is_positive(batch: tuple[torch.Tensor, ...]) -> None:
    relu = naswot(seeded_model(tiny(activation="relu")), *batch)
    hswish = naswot(seeded_model(tiny(activation="hswish")), *batch)
    assert math.isfinite(hswish) and hswish == pytest.approx(relu, rel=0.2)


def test_naswot_grows_with_the_number_of_units(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    assert naswot(seeded_model(tiny(width=16)), *batch) > naswot(seeded_model(tiny(width=8)), *batch)


# -- grad-norm ----------------------------------------------------------------------------------------
def test_grad_norm_is_zero_for_a_network_that_passes_no_signal(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    dead = zero_all_convs(seeded_model(tiny()))
    with torch.no_grad():
        for m in dead.modules():
            if isinstance(m, nn.Linear):
                m.weight.zero_()
    assert grad_norm(dead, *batch) == 0.0
    assert grad_norm(seeded_model(tiny()), *batch) > 0.0


def test_grad_norm_depends_on_the_labels(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = seeded_model(tiny())
    x, y = batch
    assert grad_norm(model, x, y) != grad_norm(model, x, (y + 1) % 10)
