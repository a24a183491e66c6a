"""Knowledge distillation (Hinton et al. 2015): the student matches the teacher's softened outputs.

    loss = alpha * KL(softmax(z_t / tau) || softmax(z_s / tau)) * tau^2 + (1 - alpha) * CE(z_s, y)

The tau^2 factor keeps the soft term's gradient scale independent of tau. Used by the supernet's
in-place distillation (the largest subnet teaches the others) and by ``nas train --teacher``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, *, alpha: float,
            temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """Distillation loss; ``teacher`` is detached here, so it never receives gradients from the student."""
    from torch.nn import functional as F

    tau = temperature
    hard = F.cross_entropy(student, labels, label_smoothing=label_smoothing)
    if alpha == 0.0:
        return hard
    soft = F.kl_div(F.log_softmax(student / tau, dim=1), F.log_softmax(teacher.detach() / tau, dim=1),
                    reduction="batchmean", log_target=True) * tau * tau
    return alpha * soft + (1.0 - alpha) * hard
