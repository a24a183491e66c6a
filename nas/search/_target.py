"""The latency target T: given in ms, or the measured latency of a reference network on the same task."""

from __future__ import annotations

import logging

from nas.search._context import SearchContext
from nas.search._evaluate import LatencyRequest, StudyRef
from nas.search._executor import Executor

log = logging.getLogger(__name__)

TARGET_OUTCOME_KEY = "outcome.target_reference"
"""Study attribute a distributed latency task writes T's measurement to (``{"latency": ...}`` or ``{"error": ...}``)."""


def resolve_target(ctx: SearchContext, executor: Executor) -> float:
    """Fixed once per study (stored), so a resume is judged against the same T."""
    stored = ctx.study.user_attrs.get("target_ms")
    if stored is not None:
        return float(stored)
    lat = ctx.spec.latency
    if lat.target_ms is not None:
        target = lat.target_ms
    else:
        assert lat.reference_architecture is not None  # read when the spec was parsed
        reference = lat.reference_architecture.with_(resolution=ctx.reference_resolution,
                                                     num_classes=ctx.num_classes)
        where = StudyRef(storage_url=ctx.storage_url, study_name=ctx.study.study_name, key=TARGET_OUTCOME_KEY)
        outcome = executor.judge(LatencyRequest(architecture=reference.model_dump(mode="json"),
                                                device=ctx.spec.device, mode="measured", study=where))
        target = outcome.ms
        ctx.study.set_user_attr("target_reference", {"name": lat.reference_label, "hash": reference.hash,
                                                     **outcome.model_dump(mode="json")})
        log.info("target T = %.3f ms: measured latency of %s at %d on %s", target, lat.reference_label,
                 ctx.reference_resolution, ctx.spec.device)
    ctx.study.set_user_attr("target_ms", target)
    return target
