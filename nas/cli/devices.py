"""``nas devices``: the device profiles latency is measured and predicted on."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from nas.cli._output import console, print_json, progress_bars

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Built-in and user (YAML) profiles, and whether their runtime is available here."""
    from nas.latency import list_profiles, runtime_unavailable_reason

    rows: list[dict[str, Any]] = []
    for p in list_profiles():
        reason = runtime_unavailable_reason(p.runtime)
        rows.append({"name": p.name, "runtime": p.runtime, "threads": p.threads, "batch": p.batch,
                     "available": reason is None, "reason": reason, "source": p.source,
                     "description": p.description})
    if as_json:
        print_json(rows)
        return
    table = Table(title="device profiles")
    for col in ("name", "runtime", "threads", "batch", "available", "source", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["runtime"], str(r["threads"]), str(r["batch"]),
                      "yes" if r["available"] else f"no: {r['reason']}", r["source"], r["description"])
    console.print(table)


@app.command()
def show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A profile's settings and this machine's fingerprint for it."""
    from nas.latency import fingerprint_info, load_profile

    profile = load_profile(name)
    data = {**profile.model_dump(mode="json"), "source": profile.source, "fingerprint": fingerprint_info(profile)}
    if as_json:
        print_json(data)
        return
    table = Table(title=f"device profile {profile.name}", show_header=False)
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        table.add_row(key, str(value))
    console.print(table)


@app.command()
def compare(
    devices: Annotated[list[str], typer.Argument(help="Device profiles to compare (nas devices list).")],
    space: Annotated[str, typer.Option("--space", "-s", help="Search space name or YAML file.")] = "mobilenetv3-small",
    resolution: Annotated[int | None, typer.Option(
        "--resolution", "-r", help="Input size; default: the space's first resolution.")] = None,
    choices: Annotated[list[str] | None, typer.Option(
        "--choice", "-c", help="Only these choices (repeatable): kernel, se, activation, groups, expansion, "
                               "block. Default: every one the space offers.")] = None,
    all_options: Annotated[bool, typer.Option(
        "--all-options", help="Every option of kernel, groups and expansion, not only the largest.")] = False,
    rounds: Annotated[int, typer.Option(help="Measuring rounds per device, alternating the devices' order.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="One line of JSON on stdout.")] = False,
) -> None:
    """What each choice costs on each device: the space's baseline network with every block's kernel, SE,
    activation, groups, expansion or block type set to one option, timed interleaved on every device, as
    the ratio to the baseline there (median over rounds, with the range)."""
    from nas.latency._compare import STATISTIC, compare_devices

    with progress_bars() as progress:
        result = compare_devices(devices, space, resolution, families=choices, all_options=all_options,
                                 rounds=rounds, progress=progress)
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    table = Table(title=f"operator costs on {result.space} at {result.resolution}x{result.resolution}: "
                        "latency / baseline on each device",
                  caption=f"{STATISTIC}; \\[min-max] over {result.rounds} round(s); "
                          "baseline row: ms and half the p10-p90 spread")
    table.add_column("choice")
    table.add_column("blocks", justify="right")
    for d in result.devices:
        table.add_column(d, justify="right")
    for row in data["rows"]:
        cells = []
        for d in result.devices:
            c = row["devices"][d]
            cells.append(f"{c['median_ms']:.3f} ms ±{c['spread'] / 2:.0%}" if row["family"] is None
                         else f"{c['ratio']:.2f}x \\[{c['ratio_min']:.2f}-{c['ratio_max']:.2f}]")
        table.add_row(row["choice"], f"{row['blocks']}/{row['total_blocks']}", *cells)
    console.print(table)
