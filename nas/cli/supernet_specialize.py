"""``nas supernet specialize SUPERNET --device D --target-ms T``: the best subnet for a device and T in
seconds, from a trained supernet and the device's latency table (see ``nas.supernet._specialize``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nas.cli._output import err_console, print_json


def specialize(
    supernet: Annotated[str, typer.Argument(help="Supernet name (the service's, or in NAS_HOME/supernets) or file.")],
    device: Annotated[str, typer.Option("--device", help="Device profile the winner must meet T on.")],
    target_ms: Annotated[float, typer.Option("--target-ms", min=0.001, help="Latency target T (measured median).")],
    table: Annotated[list[Path] | None, typer.Option("--table", help="Latency table file(s) of the device "
                                                      "(default: the device's predictor in the database: "
                                                      "its table or per-operator costs).")] = None,
    samples: Annotated[int, typer.Option("--samples", min=8, help="Subnets evaluated one-shot to fit the accuracy "
                                         "predictor (once per supernet, then cached).")] = 100,
    candidates: Annotated[int, typer.Option("--candidates", min=10, help="Candidates evolution scores.")] = 5000,
    finalists: Annotated[int, typer.Option("--finalists", min=1, max=32, help="Measured on the device.")] = 4,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    refresh: Annotated[bool, typer.Option("--refresh", help="Refit the cached accuracy predictor.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the winner's architecture "
                                                "JSON here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Fit (or reuse) the supernet's accuracy predictor, run regularized evolution on accuracy and latency
    predictors, measure the best few on the device and print the winner within T with each phase's time."""
    from nas.latency import LatencyPredictor, load_profile, measure_many
    from nas.latency._predictors import load_predictor
    from nas.service.supernet_files import resolve_supernet
    from nas.settings import get_settings
    from nas.supernet import load_supernet
    from nas.supernet._specialize import SpecializeSettings
    from nas.supernet._specialize import specialize as run

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    url = get_settings().resolved_database_url()
    profile = load_profile(device)
    # the profile's own approach: a lookup table, or per-operator costs (LiteRT, OpenVINO, int8 profiles)
    predictor = LatencyPredictor.from_file(*table) if table else load_predictor(profile, database_url=url)
    loaded = load_supernet(str(resolve_supernet(url, supernet)))
    settings = SpecializeSettings(samples=samples, candidates=candidates, finalists=finalists, seed=seed,
                                  refresh=refresh)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, disable=quiet) as bar:
        task = bar.add_task("starting", total=None)
        result = run(loaded, predictor.predict,
                     lambda archs: measure_many(archs, profile, database_url=url), target_ms, settings,
                     on_sample=lambda done, total: bar.update(task, completed=done, total=total),
                     on_phase=lambda name: bar.update(task, description=name, completed=0, total=None))
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.phases.items())
    err_console.print(f"scored {result.scored} candidates at {result.scored_per_second:,.0f}/s; {phases}",
                      markup=False)
    if result.winner is None:
        err_console.print(f"no finalist measured within {target_ms} ms on {profile.name}", markup=False)
        print_json(result.to_dict())
        raise typer.Exit(1)
    w = result.winner
    err_console.print(f"winner {w.arch.hash}: one-shot accuracy {w.oneshot_accuracy:.4f}, measured "
                      f"{w.measured['median_ms']:.3f} ms (p10 {w.measured['p10_ms']:.3f}, p90 "
                      f"{w.measured['p90_ms']:.3f}) <= T {target_ms} ms on {profile.name}", markup=False)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(w.arch.canonical_json() + "\n")
    print_json(result.to_dict())
