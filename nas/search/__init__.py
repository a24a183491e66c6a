"""The search engine: specs, the driver, executors, evaluation units and results."""

from __future__ import annotations

from nas.search._context import SearchContext
from nas.search._driver import SearchProgress, build_context, run_search
from nas.search._evaluate import LatencyOutcome, LatencyRequest, TrainOutcome, TrainRequest
from nas.search._executor import Executor, Job, JobResult, LocalExecutor
from nas.search._results import StudyView, best_trial, pareto_trials, trial_summary, write_outputs
from nas.search._spec import SearchSpec, load_spec, parse_spec

__all__ = [
    "Executor",
    "Job",
    "JobResult",
    "LatencyOutcome",
    "LatencyRequest",
    "LocalExecutor",
    "SearchContext",
    "SearchProgress",
    "SearchSpec",
    "StudyView",
    "TrainOutcome",
    "TrainRequest",
    "best_trial",
    "build_context",
    "load_spec",
    "pareto_trials",
    "parse_spec",
    "run_search",
    "trial_summary",
    "write_outputs",
]
