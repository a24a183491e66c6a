"""``nas report ID``: a search's results as a self-contained HTML page (and the Pareto plot as a PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nas.cli._output import err_console


def report(identifier: Annotated[str, typer.Argument(
               metavar="ID", help="A service search id, a study name (`nas run` names studies after the spec), "
                                  "or a `nas run` output folder (runs/searches/NAME).")],
           output: Annotated[Path | None, typer.Option(
               "--output", "-o", help="HTML file to write (default report.html unless only --png is given).")] = None,
           png: Annotated[Path | None, typer.Option("--png", help="Also write the Pareto plot alone as PNG.")] = None,
           database: Annotated[str | None, typer.Option(
               "--database", help="SQLAlchemy URL of the database (default: NAS_DATABASE_URL, else SQLite in "
                                  "NAS_HOME).")] = None) -> None:
    """Pareto front (accuracy vs measured latency, T and references on it), reward over trials, best blocks."""
    from nas.report import load_report, write_html, write_pareto_png

    if database is None:
        from nas.settings import get_settings

        database = get_settings().resolved_database_url()
    data = load_report(identifier, database)
    if output is None and png is None:
        output = Path("report.html")
    written = []
    if output is not None:
        written.append(write_html(data, output))
    if png is not None:
        written.append(write_pareto_png(data, png))
    done = len(data.complete)
    err_console.print(f"{data.source.study_name}: {len(data.trials)} trials ({done} completed); "
                      f"wrote {', '.join(str(p) for p in written)}")
