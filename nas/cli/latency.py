"""``nas latency``: measure a network on a device profile, predict it from the lookup table, build tables."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.cli._output import console, print_json, progress_bars

app = typer.Typer(no_args_is_help=True)

Device = Annotated[str, typer.Option("--device", "-d", help="Device profile name or YAML file (nas devices list).")]
Resolution = Annotated[int | None, typer.Option(
    "--resolution", "-r", help="Input size; default: the network's deployment resolution (224 unless set).")]
Json = Annotated[bool, typer.Option("--json", help="One line of JSON on stdout.")]
BUSY_CPUS = 0.3  # other processes' load above which a plain timing loop is noted as disturbed


def _show(title: str, data: dict[str, Any], keys: list[str]) -> None:
    table = Table(title=title, show_header=False)
    for key in keys:
        value = data.get(key)
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command()
def measure(
    name_or_file: Annotated[str, typer.Argument(help="Reference name, JSON file or one-line string.")],
    device: Device,
    resolution: Resolution = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Time again even if cached.")] = False,
    as_json: Json = False,
) -> None:
    """Time a network end to end in a fresh, pinned process: median, p10, p90 and number of runs."""
    from nas.arch import load_architecture
    from nas.latency import measure as measure_
    from nas.latency._profiles import load_profile

    arch = load_architecture(name_or_file)
    m = measure_(arch, device, resolution, use_cache=not no_cache)
    # which runs median_ms, p10_ms and p90_ms are over (nas.latency._timing)
    data = {"name": name_or_file, **m.to_dict(), "statistic": load_profile(device).timing.statistic}
    if as_json:
        print_json(data)
        return
    _show(f"{name_or_file} on {m.profile} at {m.resolution}x{m.resolution}", data,
          ["median_ms", "statistic", "p10_ms", "p90_ms", "all_median_ms", "runs", "spread", "cached", "arch_hash",
           "fingerprint"])


@app.command()
def predict(
    name_or_file: Annotated[str, typer.Argument(help="Reference name, JSON file or one-line string.")],
    device: Device,
    resolution: Resolution = None,
    table: Annotated[list[Path] | None, typer.Option(
        "--table", help="Exported table file(s) to predict from instead of the database.")] = None,
    measure_missing: Annotated[bool, typer.Option(
        help="Time parts the table lacks (from the database only).")] = True,
    as_json: Json = False,
) -> None:
    """Predict latency from the per-device lookup table (sum of entries, then the calibration)."""
    from nas.arch import load_architecture
    from nas.latency import LatencyPredictor, ensure_entries, load_profile

    arch = load_architecture(name_or_file)
    res = resolution or arch.resolution
    timed = 0
    if not table and load_profile(device).predictor != "lut":
        _predict_other(name_or_file, arch, device, res, measure_missing, as_json)
        return
    if table:
        predictor = LatencyPredictor.from_file(*table)
        if predictor.profile != load_profile(device).name:
            from nas.errors import LatencyError

            raise LatencyError(f"the table is for profile {predictor.profile}, not {device}")
    else:
        predictor = LatencyPredictor.from_database(device)
        if measure_missing and predictor.missing(arch, res):
            timed = ensure_entries([arch], device, res)
            predictor = LatencyPredictor.from_database(device)
    start = time.perf_counter()
    predicted = predictor.predict(arch, res)
    elapsed_us = (time.perf_counter() - start) * 1e6
    cal = predictor.calibration_for(arch.space, res)
    data = {"name": name_or_file, "arch_hash": arch.hash, "profile": predictor.profile,
            "fingerprint": predictor.fingerprint, "resolution": res, "predicted_ms": predicted,
            "table_sum_ms": predictor.table_sum(arch, res), "overhead_ms": predictor.overhead_ms,
            "calibration": {"scope": cal.scope, "model": cal.model, "slope": cal.slope,
                            "intercept_ms": cal.intercept_ms, "ms_per_mparam": cal.ms_per_mparam,
                            "slope_per_mparam": cal.slope_per_mparam, "networks": len(cal.points)},
            "calibrated": bool(cal.points), "parts_timed_now": timed, "predict_us": elapsed_us}
    if as_json:
        print_json(data)
        return
    _show(f"{name_or_file} on {predictor.profile} at {res}x{res} (predicted)", data,
          ["predicted_ms", "table_sum_ms", "calibrated", "parts_timed_now", "predict_us", "arch_hash"])


def _predict_other(name: str, arch: Any, device: str, res: int, measure_missing: bool, as_json: bool) -> None:
    """A profile whose predictor is not a lookup table (``nas.latency._predictors``)."""
    from nas.latency._predictors import ensure_predictor, load_predictor

    predictor = load_predictor(device)
    timed = 0
    if measure_missing and predictor.missing(arch, res):
        timed = ensure_predictor([arch], device, res)
        predictor = load_predictor(device)
    start = time.perf_counter()
    predicted = predictor.predict(arch, res)
    elapsed_us = (time.perf_counter() - start) * 1e6
    data = {"name": name, "arch_hash": arch.hash, "profile": predictor.profile,
            "fingerprint": predictor.fingerprint, "resolution": res, "predicted_ms": predicted,
            "predictor": getattr(predictor, "approach", "?"), "fits_built_now": timed, "predict_us": elapsed_us}
    if as_json:
        print_json(data)
        return
    _show(f"{name} on {predictor.profile} at {res}x{res} (predicted)", data,
          ["predicted_ms", "predictor", "fits_built_now", "predict_us", "arch_hash"])


@app.command()
def profile(
    device: Device,
    space: Annotated[str, typer.Option("--space", "-s", help="Search space name or YAML file.")],
    resolution: Resolution = None,
    calibrate: Annotated[int | None, typer.Option(help=(
        "Networks measured end to end to fit the calibration; default: the predictor's own (lut 24, ops 40)."))
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Table file to write.")] = None,
    jobs: Annotated[int, typer.Option(help="Parallel measuring processes, each pinned to its own CPUs.")] = 1,
    as_json: Json = False,
) -> None:
    """Build a device's predictor for a space: time every distinct stem, block and head, calibrate and
    export the table (lookup-table profiles), or measure networks and fit per-operator costs (``ops``)."""
    from nas.latency import build_table, load_profile
    from nas.latency._lut import CALIBRATION_NETWORKS

    if load_profile(device).predictor != "lut":
        from nas.latency._predictors import build_predictor
        from nas.spaces import load_space

        sp = load_space(space)
        info = build_predictor(device, sp, resolution or sp.definition.resolution[0], networks=calibrate)
        if as_json:
            print_json(info)
        else:
            _show(f"{info['approach']} predictor {sp.name} on {device}", info, list(info))
        return

    with progress_bars(as_json, lambda what: f"timing {what}") as progress:
        report = build_table(device, space, resolution, output=output,
                             calibration_networks=CALIBRATION_NETWORKS if calibrate is None else calibrate,
                             jobs=jobs, progress=progress)
    data = report.to_dict()
    if as_json:
        print_json(data)
        return
    cal = report.calibration
    data["calibration"] = (f"{cal.model}: measured ~ ({cal.slope:.4f} + {cal.slope_per_mparam:.4f}/M x weights) "
                           f"x table_sum + {cal.ms_per_mparam:.4f} ms/M x weights + {cal.intercept_ms:.4f} ms "
                           f"({len(cal.points)} networks)" if cal else "none")
    data["failed"] = len(report.failed)
    _show(f"latency table {report.space} on {report.profile} at {report.resolution}", data,
          ["entries", "measured", "reused", "failed", "seconds", "calibration", "fingerprint", "file"])


@app.command()
def validate(
    device: Device,
    space: Annotated[str, typer.Option("--space", "-s", help="Search space name or YAML file.")],
    n: Annotated[int, typer.Option("--n", help="Fresh networks to predict and measure.")] = 50,
    resolution: Resolution = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampled networks.")] = 0,
    calibrate: Annotated[int, typer.Option(
        help="Networks measured to fit the calibration, if the table has none for this space.")] = 24,
    as_json: Json = False,
) -> None:
    """Check the predictor as a user would: fresh networks (no calibration network among them) predicted,
    then timed by a plain loop of the deployed file (median of 200 runs) and by the project's measurement;
    share within +-5% and +-10%, Kendall tau, MAPE and the worst cases for each. Builds what the table lacks."""
    from rich.markup import escape

    from nas.latency._validate import validate as validate_

    with progress_bars(as_json, lambda what: f"timing {what}") as progress:
        data = validate_(device, space, resolution, n=n, seed=seed, calibration_networks=calibrate,
                         progress=progress)
    if as_json:
        print_json(data)
        return
    b = data["build"]
    fitted = f"fitted now on {b['calibrated_now']} networks" if b["calibrated_now"] else "reused"
    console.print(f"{data['profile']} / {data['space']} at {data['resolution']}: {data['predictor']} predictor "
                  f"ready in {b['seconds']} s ({b['parts_timed']} parts or fits built now; calibration {fitted}, "
                  f"{data['calibration']['model']} model); {data['n']} fresh networks (seed {data['seed']})")
    refs = {name: ref for name, ref in data["references"].items() if ref}
    names = {"plain": f"plain loop (median of {data['plain_runs']})", "project": "project measurement",
             "plain_at_reference_speed": "plain loop at the reference speed"}
    summary = Table(title="prediction against measurement")
    for col in ("reference", "within ±5%", "within ±10%", "Kendall tau", "MAPE", "bias (median)"):
        summary.add_column(col, justify="left" if col == "reference" else "right")
    for name, ref in refs.items():
        summary.add_row(names[name], f"{ref['within_5']:.0%}", f"{ref['within_10']:.0%}", f"{ref['kendall_tau']:.3f}",
                        f"{ref['mape']:.1f}%", f"{ref['bias']:+.1%}")
    console.print(summary)
    host = data.get("host")
    if host and host["disturbed"]:
        gap = "" if host["all_over_quiet"] is None else (
            f"the plain loop's all-runs median sat {host['all_over_quiet'] - 1:.0%} above its quiet-run median; ")
        console.print(f"[bold]warning[/bold]: this host was disturbed while timing: {gap}the two references agree "
                      f"within ±10% on {host['references_within_10']:.0%} of the networks. The figures above say "
                      "more about the machine than about the predictor: run again on a quiet machine.")
    speed = (host or {}).get("speed")
    if speed and abs(speed["ratio"] - 1) > 0.03:
        pace = "slower" if speed["ratio"] > 1 else "faster"
        console.print(f"note: the host ran {abs(speed['ratio'] - 1):.0%} {pace} "
                      f"during the plain loop than when the project's reference speed was set (the speed canary: "
                      f"{speed['plain_canary_ms']:.3f} ms against {speed['reference_canary_ms']:.3f} ms); the "
                      "plain loop at the reference speed divides that out")
    busy = [r["plain_other_cpus"] for r in data["networks"] if r["plain_other_cpus"] is not None]
    if busy and max(busy) > BUSY_CPUS:
        console.print(f"note: other processes used up to {max(busy):.1f} CPUs during the plain loop; its medians "
                      "include their interference (the project waits for a quiet machine before timing)")
    for name, ref in refs.items():
        worst = Table(title=escape(f"worst cases against the {names[name]}"))
        for col in ("arch hash", "predicted ms", "measured ms", "error"):
            worst.add_column(col, justify="left" if col == "arch hash" else "right")
        for w in ref["worst"]:
            worst.add_row(w["arch_hash"], f"{w['predicted_ms']:.3f}", f"{w['measured_ms']:.3f}", f"{w['error']:+.1%}")
        console.print(worst)
