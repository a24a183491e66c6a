"""``nas train``: one network trained to convergence, from inherited supernet weights and with knowledge
distillation if asked; checkpointed, resumable, exported with provenance. Importing this does not import torch."""

from __future__ import annotations

from nas.training._job import TeacherSpec, TrainJob
from nas.training._run import TrainProgress, train_network
from nas.training._spec import TrainingSpec, parse_training_spec, resolved

__all__ = ["TeacherSpec", "TrainJob", "TrainProgress", "TrainingSpec", "parse_training_spec", "resolved",
           "train_network"]
