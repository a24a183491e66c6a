"""Writing a report's files: the HTML page and, on request, the Pareto plot alone as a PNG."""

from __future__ import annotations

from pathlib import Path

from nas.report._data import Report
from nas.report._figures import pareto_figure, reward_figure, to_png, to_svg
from nas.report._html import render_html


def write_html(report: Report, path: Path) -> Path:
    html = render_html(report, to_svg(pareto_figure(report)), to_svg(reward_figure(report)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def write_pareto_png(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_png(pareto_figure(report)))
    return path
