"""Reports people look at: a finished (or running) search as one self-contained HTML page or a PNG plot.

Read-only over the study in the service database; matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

from nas.report._blocks import BlockRow, block_rows
from nas.report._data import Report, TrialPoint, load_report
from nas.report._references import ReferencePoint
from nas.report._source import StudySource, resolve_source
from nas.report._write import write_html, write_pareto_png

__all__ = [
    "BlockRow",
    "ReferencePoint",
    "Report",
    "StudySource",
    "TrialPoint",
    "block_rows",
    "load_report",
    "resolve_source",
    "write_html",
    "write_pareto_png",
]
