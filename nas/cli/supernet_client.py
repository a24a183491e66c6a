"""``nas supernet submit / status / list / cancel / download``: supernets trained by the service
(``POST /supernets``), with the same options and output conventions as ``nas submit`` and friends."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.cli._output import console, err_console, print_json
from nas.cli.client import FINAL, Client, JsonOpt, TokenOpt, UrlOpt, _download, _page_title
from nas.errors import ServiceError

KeyArg = Annotated[str, typer.Argument(help="Supernet id or name.")]


def submit(spec_file: Annotated[Path, typer.Argument(help="Supernet spec (YAML), as for `nas supernet train`.")],
           name: Annotated[str | None, typer.Option("--name", help="Override the spec's name.")] = None,
           epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Override recipe.epochs.")] = None,
           watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
           url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Train a supernet on the service's train workers; prints its id. Searches then name it in
    `proxy.supernet`."""
    from nas._documents import non_json_value, read_yaml_mapping
    from nas.errors import SpecError

    document: dict[str, Any] = read_yaml_mapping(spec_file, lambda f, r: SpecError(str(spec_file), f, r),
                                                 "a supernet spec")
    bad = non_json_value(document)
    if bad is not None:
        raise SpecError(str(spec_file), *bad)
    if name is not None:
        document["name"] = name
    if epochs is not None:
        document["recipe"] = {**(document.get("recipe") or {}), "epochs": epochs}
    client = Client(url, token)
    supernet = client.json("POST", "/supernets", json=document)
    sys.stdout.write(supernet["id"] + "\n")
    err_console.print(f"submitted supernet {supernet['id']} ({supernet['name']}): {supernet['status']}")
    if watch:
        _watch(client, supernet["id"], 2.0)


def status(key: KeyArg,
           watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends.")] = False,
           interval: Annotated[float, typer.Option("--interval", min=0.2, help="Seconds between polls.")] = 2.0,
           as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """A supernet's status, phase and progress. With --watch, exits 1 unless it succeeded."""
    client = Client(url, token)
    if watch:
        _watch(client, key, interval)
        return
    s = client.json("GET", f"/supernets/{key}")
    if as_json:
        print_json(s)
        return
    console.print(f"{s['id']}  {s['name']}  [bold]{s['status']}[/bold]  attempt {s['attempts']}")
    console.print(_line(s), markup=False)
    if s["error"]:
        console.print(f"error: {s['error']}", markup=False)


def _line(s: dict[str, Any]) -> str:
    p = s["progress"]
    fraction = f" ({100 * p['fraction']:.0f}%)" if p.get("fraction") is not None else ""
    elapsed = f", {p['elapsed_seconds']:.0f} s" if p.get("elapsed_seconds") is not None else ""
    return f"{p['phase']}{fraction}{elapsed}: {s['message']}"


def _watch(client: Client, key: str, interval: float) -> None:
    last = ""
    while True:
        s = client.json("GET", f"/supernets/{key}")
        line = f"{s['status']}: {_line(s)}"
        if line != last:
            err_console.print(line, markup=False)
            last = line
        if s["status"] in FINAL:
            break
        time.sleep(interval)
    if s["error"]:
        err_console.print(f"error: {s['error']}", markup=False)
    if s["status"] != "succeeded":
        raise typer.Exit(1)


def list_(offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
          limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
          as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Your supernets, newest first."""
    page = Client(url, token).json("GET", "/supernets", params={"offset": offset, "limit": limit})
    if as_json:
        print_json(page)
        return
    table = Table(title=_page_title("supernets", offset, len(page["data"]), page["count"], owned=True))
    for col in ("id", "name", "space", "status", "progress", "created"):
        table.add_column(col, overflow="fold")
    for s in page["data"]:
        fraction = s["progress"].get("fraction")
        table.add_row(s["id"], s["name"], str(s["spec"].get("space")), s["status"],
                      "-" if fraction is None else f"{100 * fraction:.0f}%", s["created_at"][:19].replace("T", " "))
    console.print(table)


def cancel(key: KeyArg, wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for a "
                                                            "running supernet to stop.")] = 30.0,
           url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Cancel a queued supernet now, or stop a running one within a training step."""
    client = Client(url, token)
    try:
        s = client.json("POST", f"/supernets/{key}/cancel")
    except ServiceError as exc:
        if exc.status != 409 or client.json("GET", f"/supernets/{key}")["status"] != "cancelled":
            raise
        err_console.print(f"supernet {key} is already cancelled")
        return
    deadline = time.monotonic() + wait
    while s["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        s = client.json("GET", f"/supernets/{key}")
    err_console.print(f"supernet {s['name']}: {s['status']}" + (f" ({s['error']})" if s["error"] else ""),
                      markup=False)


def download(key: KeyArg, output: Annotated[Path, typer.Option("--output", "-o", help="File to write (.pt).")],
             url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Write the trained supernet to a file (usable by `nas supernet eval/extract/specialize` and `nas run`)."""
    _download(Client(url, token), f"/supernets/{key}/file", output)
    err_console.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    for command in (submit, status, cancel, download):
        app.command(command.__name__)(command)
    app.command("list")(list_)
