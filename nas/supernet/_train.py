"""Training a supernet with the sandwich rule and in-place distillation (and, with ``group_distill``, each grouped
path distilled towards its block's dense path); checkpointed and resumable.

Everything random is a function of (seed, epoch, step): the batch order of epoch e, the random subnets of
step t and dropout's generator. So a checkpoint taken after any step resumes exactly where it stopped, and
Ctrl-C (deferred to the end of the current step, so no update is half-applied) saves one before exiting.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import SupernetError
from nas.interrupts import deferred_interrupt
from nas.supernet._spec import SupernetSpec

if TYPE_CHECKING:
    import torch

    from nas.supernet._model import Supernet

log = logging.getLogger(__name__)


@dataclass
class SupernetProgress:
    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float
    phase: str
    """``largest`` (the largest subnet alone), ``sandwich`` or ``uniform`` (the spec's rule), with ``-dense``
    while 1x1 group counts are held dense (``dense_epochs``)."""
    last_eval: dict[str, float] = field(default_factory=dict)


@dataclass
class _State:
    epoch: int = 0
    step: int = 0
    sorted_channels: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def _optimizer(net: Supernet, spec: SupernetSpec) -> torch.optim.Optimizer:
    import torch

    r = spec.recipe
    no_decay = {id(p) for p in net.no_decay_parameters()}
    groups = [{"params": [p for p in net.parameters() if id(p) not in no_decay], "weight_decay": r.weight_decay},
              {"params": [p for p in net.parameters() if id(p) in no_decay], "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov and r.momentum > 0)


def _save_checkpoint(path: Path, net: Supernet, opt: torch.optim.Optimizer, state: _State,
                     spec: SupernetSpec) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"fingerprint": spec.fingerprint, "spec": spec.model_dump(mode="json"), "model": net.state_dict(),
                "optimizer": opt.state_dict(), "state": asdict(state)}, tmp)
    tmp.replace(path)


def _resume(path: Path, net: Supernet, opt: torch.optim.Optimizer, spec: SupernetSpec) -> _State:
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("fingerprint") != spec.fingerprint:
        raise SupernetError(f"{path} was written by a different spec (space, data or recipe changed); "
                            "train under another name, or pass --fresh to start over")
    net.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    return _State(**blob["state"])


def _validate(net: Supernet, space_nets: dict[str, Any], calib: torch.Tensor, val_x: torch.Tensor,
              val_y: torch.Tensor, batch: int) -> dict[str, float]:
    from nas.supernet._oneshot import evaluate_subnet

    return {name: evaluate_subnet(net, arch, calib, val_x, val_y, batch).accuracy for name, arch in space_nets.items()}


def _phase(spec: SupernetSpec, epoch: int) -> str:
    if epoch < spec.largest_epochs:
        return "largest"
    dense = epoch < spec.largest_epochs + spec.dense_epochs
    return spec.sandwich.rule + ("-dense" if dense else "")


def train_supernet(spec: SupernetSpec, out_dir: Path, *, fresh: bool = False,
                   on_progress: Callable[[SupernetProgress], None] | None = None) -> dict[str, Any]:
    """Train (or resume) ``spec``'s supernet into ``out_dir``; returns the summary written to summary.json."""
    import torch
    from torch.nn import functional as F

    from nas.data import load_dataset
    from nas.distill import kd_loss
    from nas.proxies._train import _prepare, seeded, select_device
    from nas.spaces import load_space
    from nas.supernet._model import Supernet
    from nas.supernet._sampling import largest_architecture, sandwich, smallest_architecture, uniform
    from nas.supernet._sort import sort_channels
    from nas.supernet._store import save_supernet

    r, sw = spec.recipe, spec.sandwich
    data = load_dataset(spec.dataset)
    space = load_space(spec.space)
    device = select_device(r.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "checkpoint.pt"
    started = time.perf_counter()
    with seeded(r.seed, r.threads):
        net = Supernet(space, data.num_classes, shared_groups=spec.group_weights == "shared").to(device)
        opt = _optimizer(net, spec)
        state = _resume(ckpt, net, opt, spec) if ckpt.is_file() and not fresh else _State()
        train_x, train_y, val_x, val_y = _prepare(data, r, device)
        n = len(train_y)
        calib = train_x[torch.randperm(n, generator=torch.Generator().manual_seed(r.seed + 1))[:r.bn_recalibration]]
        ends = [(s, min(s + r.batch_size, n)) for s in range(0, n, r.batch_size) if n - s >= 2]
        total = len(ends) * r.epochs
        dense_smallest = sw.smallest_groups == "fewest"
        big = largest_architecture(space, data.num_classes)
        small = smallest_architecture(space, data.num_classes, dense_smallest)
        last_eval: dict[str, float] = state.history[-1] if state.history else {}
        with deferred_interrupt() as interrupted:
            for epoch in range(state.epoch, r.epochs):
                phase = _phase(spec, epoch)
                if phase != "largest" and spec.largest_epochs and not state.sorted_channels:
                    sort_channels(net)  # the momentum buffers no longer match the permuted weights: reset them
                    opt = _optimizer(net, spec)
                    state.sorted_channels = True
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(r.seed * 1000 + epoch)).to(device)
                net.train()
                for i in range(state.step - epoch * len(ends), len(ends)):
                    idx = perm[ends[i][0]:ends[i][1]]
                    x, y = train_x[idx], train_y[idx]
                    for group in opt.param_groups:
                        group["lr"] = r.lr_at(state.step, total, len(ends))
                    torch.manual_seed(r.seed * 1_000_003 + state.step)
                    rng, dense = random.Random(r.seed * 1_000_003 + state.step), phase.endswith("-dense")
                    if phase == "largest":
                        nets = [big]
                    elif sw.rule == "uniform":
                        nets = uniform(space, data.num_classes, rng, sw.random, dense)
                    else:
                        nets = sandwich(space, data.num_classes, rng, sw.random, dense_smallest, dense)
                    opt.zero_grad(set_to_none=True)
                    soft: torch.Tensor | None = None  # the sandwich's first (largest) subnet teaches the rest
                    total_loss = 0.0
                    for arch in nets:
                        distill: list[torch.Tensor] | None = [] if spec.group_distill and phase != "largest" else None
                        logits = net(x, arch, distill=distill)
                        if soft is None:
                            loss = F.cross_entropy(logits, y, label_smoothing=r.label_smoothing)
                            if phase.startswith("sandwich"):
                                soft = logits.detach()
                        else:
                            loss = kd_loss(logits, soft, y, alpha=sw.alpha, temperature=sw.temperature,
                                           label_smoothing=r.label_smoothing)
                        if distill:
                            loss = loss + spec.group_distill * torch.stack(distill).mean()
                        loss.backward()
                        total_loss += float(loss.detach())
                    if not all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None):
                        raise SupernetError(f"training diverged at step {state.step} (non-finite gradients); "
                                            "lower recipe.lr")
                    if r.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), r.grad_clip)
                    opt.step()
                    state.step += 1
                    if on_progress is not None:
                        on_progress(SupernetProgress(epoch + 1, r.epochs, state.step, total,
                                                     total_loss / len(nets), phase, last_eval))
                    if interrupted[0]:
                        _save_checkpoint(ckpt, net, opt, state, spec)
                        raise KeyboardInterrupt
                state.epoch = epoch + 1
                if (spec.eval_every and state.epoch % spec.eval_every == 0) or state.epoch == r.epochs:
                    last_eval = {"epoch": state.epoch, **_validate(net, {"largest": big, "smallest": small}, calib,
                                                                   val_x, val_y, r.eval_batch_size)}
                    state.history.append(last_eval)
                    log.info("supernet %s epoch %d: %s", spec.name, state.epoch, last_eval)
                _save_checkpoint(ckpt, net, opt, state, spec)
                if on_progress is not None:
                    on_progress(SupernetProgress(state.epoch, r.epochs, state.step, total, float("nan"),
                                                 phase, last_eval))
    summary = {"name": spec.name, "space": space.name, "dataset": data.name, "num_classes": data.num_classes,
               "epochs": r.epochs, "steps": state.step, "history": state.history, "spec": spec.model_dump(mode="json"),
               "fingerprint": spec.fingerprint, "train_resolution": r.resolution,
               "seconds_this_run": round(time.perf_counter() - started, 3)}
    save_supernet(net.cpu(), out_dir / "supernet.pt", summary)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
