"""``nas train``: train one network to convergence, optionally from inherited weights and with a teacher.

loss = alpha * KL(teacher || student at temperature tau) * tau^2 + (1 - alpha) * CE (``nas.distill``).
Checkpointed after every epoch and on Ctrl-C (between steps); batch order, dropout and everything else
random derive from (seed, epoch, step), so a resumed run ends with the weights an uninterrupted one would.
The result is exported as a state file with provenance, as checked ONNX and, for a device profile, in
the device's deployed format with provenance (``_export``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.arch import Architecture
from nas.errors import TrainingError
from nas.interrupts import deferred_interrupt
from nas.training._job import TrainJob


@dataclass
class TrainProgress:
    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float
    val_accuracy: float | None


def _save(path: Path, blob: dict[str, Any]) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def train_network(arch: Architecture, job: TrainJob, out_dir: Path, *, fresh: bool = False, onnx: bool = True,
                  device: str | None = None, supernet_file: Path | None = None,
                  on_progress: Callable[[TrainProgress], None] | None = None) -> dict[str, Any]:
    """Train ``arch`` as ``job`` says into ``out_dir`` (model.pt, model.onnx unless ``onnx`` is False,
    summary.json; with ``device``, also the device's deployed file and its provenance); returns the summary.
    ``supernet_file``: where ``job.supernet`` is read from (a service worker's download of the named one)."""
    import torch
    from torch.nn import functional as F

    from nas.builder import build_model
    from nas.data import load_dataset
    from nas.distill import kd_loss
    from nas.export import check_onnx, export_onnx, export_state
    from nas.proxies._speed import crop_depthwise_kernels
    from nas.proxies._train import _param_groups, _prepare, evaluate, recalibrate_bn, seeded, select_device
    from nas.training._teacher import build_teacher, inherited_state

    r = job.recipe
    data = load_dataset(job.dataset)
    arch = arch.with_(num_classes=data.num_classes) if arch.num_classes != data.num_classes else arch
    hardware = select_device(r.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "checkpoint.pt"
    started = time.perf_counter()
    # Trained at the proxy's resolution, exported at the architecture's: the accuracy is the former's.
    provenance: dict[str, Any] = {"job": job.model_dump(mode="json"), "fingerprint": job.fingerprint,
                                  "dataset": data.name, "arch_hash": arch.hash,
                                  "resolution": {"trained": job.recipe.resolution, "exported": arch.resolution}}
    with seeded(r.seed, r.threads):
        loaded = None
        if job.supernet is not None:
            from nas.supernet import load_supernet

            loaded = load_supernet(str(supernet_file or job.supernet))
        model = build_model(arch)
        if job.inherit:
            assert loaded is not None
            model.load_state_dict(inherited_state(loaded, arch))
            provenance["initial_weights"] = {"supernet": job.supernet, "file": str(loaded.path),
                                             "fingerprint": loaded.meta.get("fingerprint")}
        crop_depthwise_kernels(model)
        model.to(hardware)
        train_x, train_y, val_x, val_y = _prepare(data, r, hardware)
        n = len(train_y)
        calib = train_x[torch.randperm(n, generator=torch.Generator().manual_seed(r.seed + 1))[:r.bn_recalibration]]
        teacher = None
        if job.teacher is not None:
            teacher, provenance["teacher"] = build_teacher(job.teacher, loaded, data.num_classes, calib,
                                                           r.eval_batch_size)
            if loaded is not None and "supernet" in provenance["teacher"]:  # as named (a service's: its name)
                provenance["teacher"].update(supernet=job.supernet, file=str(loaded.path))
            teacher.to(hardware)
        opt = torch.optim.SGD(_param_groups(model, r.weight_decay), lr=r.lr, momentum=r.momentum,
                              nesterov=r.nesterov and r.momentum > 0)
        epoch0, step, history = 0, 0, []
        if ckpt.is_file() and not fresh:
            blob = torch.load(ckpt, map_location=hardware, weights_only=True)
            if blob.get("fingerprint") != job.fingerprint or blob.get("arch_hash") != arch.hash:
                raise TrainingError(f"{ckpt} was written by another job or architecture; use another --out, "
                                    "or --fresh to start over")
            model.load_state_dict(blob["model"])
            opt.load_state_dict(blob["optimizer"])
            epoch0, step, history = blob["epoch"], blob["step"], blob["history"]

        def checkpoint(epoch: int) -> None:
            _save(ckpt, {"fingerprint": job.fingerprint, "arch_hash": arch.hash, "model": model.state_dict(),
                         "optimizer": opt.state_dict(), "epoch": epoch, "step": step, "history": history})

        ends = [(s, min(s + r.batch_size, n)) for s in range(0, n, r.batch_size) if n - s >= 2]
        total = len(ends) * r.epochs
        with deferred_interrupt() as interrupted:
            for epoch in range(epoch0, r.epochs):
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(r.seed * 1000 + epoch)).to(hardware)
                model.train()
                loss_sum, seen = 0.0, 0
                for i in range(step - epoch * len(ends), len(ends)):
                    idx = perm[ends[i][0]:ends[i][1]]
                    x, y = train_x[idx], train_y[idx]
                    for group in opt.param_groups:
                        group["lr"] = r.lr_at(step, total, len(ends))
                    torch.manual_seed(r.seed * 1_000_003 + step)
                    logits = model(x)
                    if teacher is not None and job.teacher is not None:
                        with torch.no_grad():
                            soft = teacher(x)
                        loss = kd_loss(logits, soft, y, alpha=job.teacher.alpha, temperature=job.teacher.temperature,
                                       label_smoothing=r.label_smoothing)
                    else:
                        loss = F.cross_entropy(logits, y, label_smoothing=r.label_smoothing)
                    if not torch.isfinite(loss):
                        raise TrainingError(f"training diverged at step {step} (non-finite loss); lower the lr")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if r.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
                    opt.step()
                    step += 1
                    loss_sum, seen = loss_sum + float(loss.detach()) * len(idx), seen + len(idx)
                    if on_progress is not None:
                        on_progress(TrainProgress(epoch + 1, r.epochs, step, total, loss_sum / seen,
                                                  history[-1]["val_accuracy"] if history else None))
                    if interrupted[0]:
                        checkpoint(epoch)
                        raise KeyboardInterrupt
                if r.bn_recalibration:
                    recalibrate_bn(model, calib, r.batch_size)
                history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1),
                                "val_accuracy": evaluate(model, val_x, val_y, r.eval_batch_size)})
                checkpoint(epoch + 1)
                if on_progress is not None:
                    on_progress(TrainProgress(epoch + 1, r.epochs, step, total, float("nan"),
                                              history[-1]["val_accuracy"]))
    model = model.cpu().eval()
    static = build_model(arch)  # plain modules (the cropped depthwise class is a training speed-up only)
    static.load_state_dict(model.state_dict())
    summary = {"arch_hash": arch.hash, "accuracy": history[-1]["val_accuracy"] if history else None,
               "history": history, "steps": step, "seconds_this_run": round(time.perf_counter() - started, 3),
               **provenance}
    files = {"state": str(export_state(arch, out_dir / "model.pt", model=static, provenance=summary))}
    if onnx:
        path = export_onnx(arch, out_dir / "model.onnx", model=static)
        check_onnx(arch, path, static)
        files["onnx"] = str(path)
    if device is not None:
        from nas.training._export import PROVENANCE, export_for_device

        deployed = export_for_device(arch, static, out_dir, device, job.dataset,
                                     {k: v for k, v in summary.items() if k != "history"})
        files["provenance"] = deployed.pop(PROVENANCE)
        files["deployable"] = next(iter(deployed.values()))
        summary["deployed_files"] = sorted(Path(p).name for p in deployed.values())
    summary["files"] = files
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
