"""``nas run SPEC.yaml``: a whole search in-process on the embedded database, with a progress bar."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nas.cli._output import err_console


def run(spec_file: Annotated[Path, typer.Argument(help="Search spec (YAML); see search_spaces/specs/.")],
        name: Annotated[str | None, typer.Option("--name", help="Study name (default: the spec's name).")] = None,
        trials: Annotated[int | None, typer.Option("--trials", min=1, help="Override the trial budget.")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False) -> None:
    """Run or resume a search; prints the best architecture JSON on stdout. Ctrl-C stops and keeps state."""
    from nas.latency import load_profile
    from nas.search import parse_spec, run_search, write_outputs
    from nas.search._spec import read_spec_document

    document = read_spec_document(spec_file)
    if trials is not None:  # before parsing: defaults that depend on the budget are checked with this one
        document["budget"] = {**(document.get("budget") or {}), "trials": trials}
    spec = parse_spec(document, str(spec_file), local_files=True)
    load_profile(spec.device)  # embedded runs measure here: an unknown device is one line now, not failed trials
    if spec.proxy.supernet is not None:  # likewise an unknown supernet
        from nas.supernet import resolve

        resolve(spec.proxy.supernet)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    total = spec.budget.trials
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[best]}"), console=err_console,
                  disable=quiet) as bar:
        task = bar.add_task(f"{spec.name} ({spec.strategy.name})", total=total, best="")

        def on_progress(p) -> None:  # type: ignore[no-untyped-def]
            best = f"best reward {p.best_value:.4f} (trial {p.best_trial})" if p.best_value is not None else ""
            bar.update(task, completed=p.finished, best=f"{best} {p.message}")

        try:
            ctx = run_search(spec, study_name=name, on_progress=on_progress)
        except KeyboardInterrupt:
            err_console.print("interrupted: state is saved; run the same command again to resume")
            raise typer.Exit(130) from None
    result = write_outputs(ctx)
    best = result["best"]
    if best is None:
        err_console.print("no trial completed; nothing to report")
        raise typer.Exit(1)
    from nas.search._describe import describe_best

    err_console.print(describe_best(result, ctx.target_ms), markup=False)
    files = dict.fromkeys(result["files"].values())  # once each: on cpu-ort-1t the deployable file is best.onnx
    err_console.print(f"files: {', '.join(files)}", markup=False)
    sys.stdout.write(Path(result["files"]["architecture"]).read_text())
