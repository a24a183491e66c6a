"""The proxy-training recipe: one frozen value per search, so every candidate is trained the same way."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainRecipe(BaseModel):
    """SGD (Nesterov) with linear warm-up then cosine decay, label smoothing and gradient clipping.

    The defaults are tuned for the digits proxy at 32x32 on CPU: a MobileNetV3-Small-like network
    reaches well above 90% validation accuracy in a few epochs (README has the measured figures).
    ``resolution`` is the *training* resolution; the architecture's own ``resolution`` stays the
    deployment resolution that latency is judged at. ``subset`` caps the training examples per epoch
    (a seeded, stratified subset of the training split); validation always uses the whole split.
    Before each validation the BN statistics are re-estimated on ``bn_recalibration`` training examples
    (as OFA does for sub-networks): after a few hundred high-learning-rate steps the running averages
    lag the weights, and early-epoch accuracy (what a pruner sees) would otherwise sit near chance.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(default=5, ge=1, le=1000)
    batch_size: int = Field(default=64, ge=2, le=8192)
    lr: float = Field(default=0.1, gt=0.0, le=10.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(default=5e-5, ge=0.0, le=0.1, description="Not applied to BN and biases.")
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = Field(default=1.0, ge=0.0, le=100.0)
    label_smoothing: float = Field(default=0.1, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(default=5.0, gt=0.0, description="Max global gradient norm; None: off.")
    resolution: int = Field(default=32, ge=8, le=1024)
    subset: int | None = Field(default=None, ge=2)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    threads: int | None = Field(default=None, ge=1, le=512, description="torch CPU threads; None: all cores.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: int = Field(default=256, ge=1, le=65536)
    bn_recalibration: int = Field(
        default=512, ge=0,
        description="Training examples used to re-estimate BN statistics before each validation; 0: off.")

    @property
    def fingerprint(self) -> str:
        """Content hash of the fields that change results (threads and device left out), for provenance."""
        body = self.model_dump(mode="json", exclude={"threads", "device", "eval_batch_size"})
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def lr_at(self, step: int, total_steps: int, steps_per_epoch: int) -> float:
        """Learning rate before optimizer step ``step`` (0-based): linear warm-up, then cosine to zero."""
        import math

        warmup = min(int(round(self.warmup_epochs * steps_per_epoch)), max(total_steps - 1, 0))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        if self.schedule == "constant":
            return self.lr
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * progress))
