"""Proxy training: learns, is deterministic, stops when told (pruning), inherits weights, is exact about
its CPU speed-up. A two-block network on 400 digits at 16x16 keeps every run well under a second."""

from __future__ import annotations

import math

import optuna
import pytest
import torch

from nas.arch import Architecture, parse_architecture
from nas.builder import build_model
from nas.data import DatasetSpec, ProxyData, load_dataset
from nas.errors import TrainingError
from nas.proxies import TrainRecipe, TrainResult, evaluate, optuna_reporter, select_device, train_and_evaluate
from nas.proxies._speed import CroppedDepthwiseConv2d, crop_depthwise_kernels

from .skips import NOT_APPLICABLE

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tiny(width: int = 8, kernel: int = 3, activation: str = "relu", se: bool = False,
         num_classes: int = 10) -> Architecture:
    block = {"type": "mbconv", "stride": 2, "kernel": kernel, "se": se, "activation": activation}
    return parse_architecture({
        "num_classes": num_classes, "stem": {"channels": width, "stride": 2, "activation": activation},
        "stages": [[{**block, "out": 2 * width, "mid": 4 * width}], [{**block, "out": 4 * width, "mid": 8 * width}]],
        "head": {"activation": activation},
    })


def recipe(**changes: object) -> TrainRecipe:
    base: dict[str, object] = {"epochs": 3, "batch_size": 32, "resolution": 16, "threads": 1}
    return TrainRecipe.model_validate({**base, **changes})


@pytest.fixture(scope="module")
def data() -> ProxyData:
    return load_dataset(DatasetSpec(resolution=16, subset=400))


@pytest.fixture(scope="module")
def trained(data: ProxyData) -> TrainResult:
    return train_and_evaluate(tiny(), data, recipe())


def test_a_tiny_network_learns_digits_far_above_chance(trained: TrainResult) -> None:
    assert trained.accuracy > 0.6
    assert trained.accuracy == trained.val_accuracy[-1]
    assert (trained.epochs_run, len(trained.train_loss), trained.pruned, trained.diverged) == (3, 3, False, False)
    assert trained.train_loss[-1] < trained.train_loss[0]
    assert trained.train_seconds > 0 and trained.device == "cpu"
    assert "state_dict" not in trained.to_dict()


def test_the_same_seed_gives_the_same_accuracy_and_the_same_weights(data: ProxyData, trained: TrainResult) -> None:
    again = train_and_evaluate(tiny(), data, recipe())
    assert again.val_accuracy == trained.val_accuracy and again.train_loss == trained.train_loss
    assert all(torch.equal(again.state_dict[k], v) for k, v in trained.state_dict.items())


def test_another_seed_gives_another_run(data: ProxyData, trained: TrainResult) -> None:
    other = train_and_evaluate(tiny(), data, recipe(seed=1))
    assert not torch.equal(other.state_dict["stem.0.0.weight"], trained.state_dict["stem.0.0.weight"])


def test_the_returned_weights_reproduce_the_reported_accuracy(data: ProxyData, trained: TrainResult) -> None:
    model = build_model(tiny())
    model.load_state_dict(trained.state_dict)
    assert evaluate(model, data.val_x, data.val_y) == pytest.approx(trained.accuracy, abs=1.5 / len(data.val_y))


def test_the_report_callback_sees_every_epoch_in_order_with_its_validation_accuracy(data: ProxyData) -> None:
    seen: list[tuple[int, float]] = []

    def report(epoch: int, accuracy: float) -> bool:
        seen.append((epoch, accuracy))
        return False

    result = train_and_evaluate(tiny(), data, recipe(), report=report)
    assert seen == list(enumerate(result.val_accuracy, start=1))


def test_returning_true_from_report_stops_training_and_marks_the_run_pruned(data: ProxyData) -> None:
    result = train_and_evaluate(tiny(), data, recipe(epochs=5), report=lambda epoch, acc: epoch == 2)
    assert (result.pruned, result.epochs_run, len(result.val_accuracy)) == (True, 2, 2)
    with pytest.raises(optuna.TrialPruned, match="after epoch 2"):
        result.raise_if_pruned()


def test_the_optuna_reporter_prunes_through_the_studys_pruner(data: ProxyData) -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.999))
    trial = study.ask()
    result = train_and_evaluate(tiny(), data, recipe(), report=optuna_reporter(trial))
    assert result.pruned and result.epochs_run == 1
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert study.trials[0].intermediate_values == {1: result.val_accuracy[0]}


def test_the_optuna_reporter_lets_an_unpromising_run_finish_when_the_pruner_allows(data: ProxyData) -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    result = train_and_evaluate(tiny(), data, recipe(epochs=2), report=optuna_reporter(trial))
    assert not result.pruned
    result.raise_if_pruned()


def test_multi_objective_trials_keep_the_curve_as_a_user_attribute_and_are_never_pruned(data: ProxyData) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    result = train_and_evaluate(tiny(), data, recipe(epochs=2), report=optuna_reporter(trial))
    assert not result.pruned
    assert trial.user_attrs["intermediate_accuracy"] == result.val_accuracy


def test_weights_inherited_from_a_trained_run_start_where_it_ended(data: ProxyData, trained: TrainResult) -> None:
    frozen = recipe(epochs=1, lr=1e-9, warmup_epochs=0)
    inherited = train_and_evaluate(tiny(), data, frozen, init_state=trained.state_dict)
    fresh = train_and_evaluate(tiny(), data, frozen)
    assert inherited.inherited == len(trained.state_dict) and fresh.inherited == 0
    assert inherited.accuracy >= trained.accuracy - 0.05
    assert inherited.accuracy > fresh.accuracy + 0.3


def test_tensors_whose_shape_changed_are_skipped_and_the_rest_inherited(data: ProxyData) -> None:
    wide = build_model(tiny(width=16)).state_dict()
    own = build_model(tiny(width=8)).state_dict()
    same = sum(1 for k, v in wide.items() if k in own and v.shape == own[k].shape)
    init_state = {**wide, "not.a.layer": torch.ones(1)}
    result = train_and_evaluate(tiny(width=8), data, recipe(epochs=1), init_state=init_state)
    assert 0 < result.inherited == same < len(own)


def test_a_non_finite_loss_stops_the_run_as_diverged(data: ProxyData, trained: TrainResult) -> None:
    poisoned = {**trained.state_dict, "classifier.0.weight": torch.full_like(trained.state_dict["classifier.0.weight"],
                                                                               math.nan)}
    result = train_and_evaluate(tiny(), data, recipe(epochs=3), init_state=poisoned)
    assert result.diverged and result.epochs_run == 1 and not result.pruned


def test_a_class_count_mismatch_between_network_and_data_is_refused(data: ProxyData) -> None:
    with pytest.raises(TrainingError, match="num_classes"):
        train_and_evaluate(tiny(num_classes=5), data, recipe())


def test_data_at_another_resolution_is_resized_to_the_recipes(data: ProxyData) -> None:
    result = train_and_evaluate(tiny(), data, recipe(epochs=1, resolution=12, subset=100))
    assert 0.0 <= result.accuracy <= 1.0 and result.epochs_run == 1


def test_training_restores_the_callers_thread_count(data: ProxyData) -> None:
    before = torch.get_num_threads()
    train_and_evaluate(tiny(), data, recipe(epochs=1, threads=2, subset=64))
    assert torch.get_num_threads() == before


def test_asking_for_cuda_without_one_is_an_error() -> None:
    if torch.cuda.is_available():
        pytest.skip(f"{NOT_APPLICABLE} this machine has CUDA")
    with pytest.raises(TrainingError, match="cuda"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"


# -- recipe -------------------------------------------------------------------------------------------
def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_zero() -> None:
    r = TrainRecipe(lr=0.1, warmup_epochs=1)
    lrs = [r.lr_at(s, total_steps=40, steps_per_epoch=10) for s in range(40)]
    assert lrs[:10] == pytest.approx([0.01 * (s + 1) for s in range(10)])
    assert lrs[10] == pytest.approx(0.1) and lrs[25] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)) and lrs[-1] < 0.001


def test_a_recipe_fingerprint_changes_with_what_changes_results_only() -> None:
    assert TrainRecipe(threads=1).fingerprint == TrainRecipe(threads=2, device="cpu").fingerprint
    assert TrainRecipe().fingerprint != TrainRecipe(lr=0.2).fingerprint


# -- the exact CPU speed-up ---------------------------------------------------------------------------
@pytest.mark.parametrize(("kernel", "size"), [(7, 8), (5, 4), (3, 2)])
def test_cropping_depthwise_kernels_changes_neither_outputs_nor_gradients(kernel: int, size: int) -> None:
    arch = tiny(kernel=kernel, se=True, activation="hswish")
    torch.manual_seed(0)
    plain = build_model(arch)
    cropped = build_model(arch)
    cropped.load_state_dict(plain.state_dict())
    assert crop_depthwise_kernels(cropped) == 2
    assert any(isinstance(m, CroppedDepthwiseConv2d) for m in cropped.modules())
    x, y = torch.randn(6, 3, size, size), torch.arange(6)
    outputs = []
    for model in (plain, cropped):
        out = model(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(plain.named_parameters(), cropped.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
