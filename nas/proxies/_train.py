"""Short, seeded proxy training with per-epoch validation, early stopping by callback and weight inheritance."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.arch import Architecture
from nas.data import ProxyData, stratified_subset
from nas.errors import TrainingError
from nas.proxies._recipe import TrainRecipe

if TYPE_CHECKING:
    import optuna
    import torch
    from torch import nn

log = logging.getLogger(__name__)

Reporter = Callable[[int, float], bool]
"""``report(epoch, val_accuracy) -> stop``: called after every epoch (1-based); True stops the run."""


@dataclass(eq=False)
class TrainResult:
    accuracy: float
    """Validation accuracy (0..1) after the last epoch run."""
    val_accuracy: list[float]
    train_loss: list[float]
    train_seconds: float
    epochs_run: int
    pruned: bool
    diverged: bool
    device: str
    inherited: int = 0
    """How many tensors were taken from ``init_state``."""
    state_dict: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no weights) for trial records."""
        return {k: v for k, v in asdict(self).items() if k != "state_dict"}

    def raise_if_pruned(self) -> None:
        """In an Optuna objective function: turn a pruned run into ``optuna.TrialPruned``."""
        if self.pruned:
            import optuna

            raise optuna.TrialPruned(f"pruned after epoch {self.epochs_run} at accuracy {self.accuracy:.4f}")


def optuna_reporter(trial: optuna.trial.Trial, pruner: optuna.pruners.BasePruner | None = None,
                    score: Callable[[float], float] | None = None) -> Reporter:
    """A ``report`` callback wired to ``trial.report`` + ``trial.should_prune()``; ``score`` maps each
    epoch's accuracy to the value reported (the search's reward, so the pruner ranks like the study).

    After a pruned run, an objective function calls ``result.raise_if_pruned()``; an ask-and-tell
    driver calls ``study.tell(trial, state=TrialState.PRUNED)``. Optuna does not support
    ``trial.report`` in multi-objective studies, so there the curve is stored in the user attribute
    ``intermediate_accuracy`` and ``pruner`` (one that reads that curve, such as the search's Pareto
    pruner) is asked directly; without one the callback never stops the run.
    """
    multi_objective = len(trial.study.directions) > 1
    curve: list[float] = []

    def report(epoch: int, accuracy: float) -> bool:
        if multi_objective:
            curve.append(accuracy)
            trial.set_user_attr("intermediate_accuracy", list(curve))
            if pruner is None:
                return False
            return bool(pruner.prune(trial.study, trial.study._storage.get_trial(trial._trial_id)))
        trial.report(score(accuracy) if score else accuracy, step=epoch)
        return bool(trial.should_prune())

    return report


def select_device(preference: str = "auto") -> torch.device:
    """CUDA when asked for or available (``auto``), else CPU; asking for CUDA without one is an error."""
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device: cuda requested but torch.cuda.is_available() is False")
    use_cuda = preference == "cuda" or (preference == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if use_cuda else "cpu")


@contextmanager
def seeded(seed: int, threads: int | None = None) -> Iterator[None]:
    """Seed python, numpy and torch, fix the thread count and ask torch for deterministic kernels;
    the thread count and determinism flags are restored on exit (other code shares the process)."""
    import torch

    prev = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.set_num_threads(prev[0])
        torch.use_deterministic_algorithms(prev[1], warn_only=prev[2])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev[3], prev[4]


def inherit(model: nn.Module, init_state: Mapping[str, Any]) -> int:
    """Copy every tensor of ``init_state`` whose name and shape match the model; return how many.

    ``strict=False`` semantics, extended to shapes: missing names keep their fresh initialisation,
    unknown names are ignored, and shape mismatches are skipped (logged) rather than raised, because a
    NetAdapt proposal shrinks some layers. Truncating weights to the new shape (e.g. keeping the
    largest-norm filters) is the caller's decision, made before passing ``init_state``.
    """
    own = model.state_dict()
    usable = {k: v for k, v in init_state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    skipped = sorted(k for k, v in init_state.items() if k in own and k not in usable)
    if skipped:
        log.info("init_state: %d tensors skipped for shape mismatch (first: %s)", len(skipped), skipped[0])
    model.load_state_dict(usable, strict=False)
    return len(usable)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Replace BN running statistics with their exact average over ``x`` (train-mode forward, no grad)."""
    import torch
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(x) < 2:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            if len(x) - start >= 2:
                model(x[start:start + batch_size])
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy (0..1) in eval mode (BN running statistics, no dropout)."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(x[start:start + batch_size])
            correct += int((logits.argmax(1) == y[start:start + batch_size]).sum())
    return correct / max(len(y), 1)


def _prepare(data: ProxyData, recipe: TrainRecipe, device: torch.device) -> tuple[torch.Tensor, ...]:
    from torch.nn import functional as F

    train_x, train_y, val_x, val_y = data.train_x, data.train_y, data.val_x, data.val_y
    if recipe.subset is not None and recipe.subset < len(train_y):
        keep = stratified_subset(train_y.numpy(), recipe.subset, recipe.seed)
        train_x, train_y = train_x[keep], train_y[keep]
    if data.resolution != recipe.resolution:
        log.info("resizing %s from %d to the recipe's %d", data.name, data.resolution, recipe.resolution)
        size, shrink = (recipe.resolution, recipe.resolution), data.resolution > recipe.resolution
        train_x = F.interpolate(train_x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
        val_x = F.interpolate(val_x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return tuple(t.to(device) for t in (train_x, train_y, val_x, val_y))


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module, x: torch.Tensor,
                 y: torch.Tensor, perm: torch.Tensor, recipe: TrainRecipe, step: int, total: int,
                 steps_per_epoch: int) -> tuple[float, int, bool]:
    """One pass over ``perm``: (mean training loss, global step after it, whether the loss went non-finite)."""
    import torch
    from torch import nn

    model.train()
    loss_sum, seen = 0.0, 0
    for start in range(0, len(perm), recipe.batch_size):
        idx = perm[start:start + recipe.batch_size]
        if len(idx) < 2:  # BatchNorm needs two samples once the map is 1x1
            continue
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr_at(step, total, steps_per_epoch)
        loss = criterion(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            return loss_sum / max(seen, 1), step, True
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        step += 1
        loss_sum += float(loss.detach()) * len(idx)
        seen += len(idx)
    return loss_sum / max(seen, 1), step, False


def _warn_if_bn_statistics_lag(arch: Architecture, recipe: TrainRecipe, steps: int) -> None:
    """Measured on digits: MobileNetV3's BN momentum 0.01 without re-estimation leaves validation at chance
    after 2 and 5 epochs (the running averages still hold much of their initial 0/1)."""
    left = (1 - arch.bn.momentum) ** steps
    if not recipe.bn_recalibration and left > 0.05:
        log.warning("%s: BatchNorm momentum %g over %d steps leaves %.0f%% of the initial running statistics and "
                    "bn_recalibration is 0, so validation accuracy will be far too low; set bn_recalibration > 0",
                    arch.hash, arch.bn.momentum, steps, 100 * left)


def train_and_evaluate(arch: Architecture, data: ProxyData, recipe: TrainRecipe | None = None,
                       report: Reporter | None = None,
                       init_state: Mapping[str, Any] | None = None) -> TrainResult:
    """Build ``arch``, train it with ``recipe`` on ``data`` and return per-epoch validation accuracy.

    Same arch, data and recipe (and thread count) give the same result: everything is seeded from
    ``recipe.seed`` and the batch order comes from a private generator. ``report`` is called after each
    epoch and may stop the run (pruning). ``init_state`` seeds the weights (see :func:`inherit`). A
    non-finite loss stops the run with ``diverged=True``. The trained weights come back on the CPU.
    """
    import torch
    from torch import nn

    from nas.builder import build_model
    from nas.proxies._speed import crop_depthwise_kernels

    recipe = recipe or TrainRecipe()
    if arch.num_classes != data.num_classes:
        raise TrainingError(f"num_classes: the architecture has {arch.num_classes} outputs but {data.name} "
                            f"has {data.num_classes} classes; use arch.with_(num_classes={data.num_classes})")
    device = select_device(recipe.device)
    with seeded(recipe.seed, recipe.threads):
        model = build_model(arch)
        inherited = inherit(model, init_state) if init_state is not None else 0
        crop_depthwise_kernels(model)
        model.to(device)
        train_x, train_y, val_x, val_y = _prepare(data, recipe, device)
        optimizer = torch.optim.SGD(_param_groups(model, recipe.weight_decay), lr=recipe.lr,
                                    momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0)
        criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        order = torch.Generator().manual_seed(recipe.seed)
        n = len(train_y)
        calibration = torch.randperm(n, generator=torch.Generator().manual_seed(recipe.seed + 1))
        calibration = calibration[:recipe.bn_recalibration].to(device)
        steps_per_epoch = sum(1 for s in range(0, n, recipe.batch_size) if n - s >= 2)
        total = steps_per_epoch * recipe.epochs
        _warn_if_bn_statistics_lag(arch, recipe, total)
        accs: list[float] = []
        losses: list[float] = []
        step, pruned, diverged = 0, False, False
        start_time = time.perf_counter()
        for epoch in range(1, recipe.epochs + 1):
            loss, step, diverged = _train_epoch(model, optimizer, criterion, train_x, train_y,
                                                torch.randperm(n, generator=order).to(device), recipe, step,
                                                total, steps_per_epoch)
            losses.append(loss)
            if recipe.bn_recalibration and not diverged:
                recalibrate_bn(model, train_x[calibration], recipe.batch_size)
            accs.append(evaluate(model, val_x, val_y, recipe.eval_batch_size))
            log.debug("%s epoch %d: loss %.4f, val %.4f", arch.hash, epoch, losses[-1], accs[-1])
            if diverged:
                log.warning("%s diverged in epoch %d (non-finite loss)", arch.hash, epoch)
                break
            if report is not None and report(epoch, accs[-1]):
                pruned = True
                break
        seconds = time.perf_counter() - start_time
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return TrainResult(accuracy=accs[-1], val_accuracy=accs, train_loss=losses, train_seconds=seconds,
                       epochs_run=len(accs), pruned=pruned, diverged=diverged, device=str(device),
                       inherited=inherited, state_dict=state)
