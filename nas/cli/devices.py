"""``nas devices``: the device profiles latency is measured and predicted on."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from nas.cli._output import console, print_json

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
