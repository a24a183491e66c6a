"""``status / list / cancel`` of the service's leased jobs (supernets, trainings): one set of commands per
resource, with the output conventions of ``nas status`` and friends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.cli._output import console, err_console, print_json
from nas.cli.client import FINAL, Client, JsonOpt, TokenOpt, UrlOpt, _page_title
from nas.errors import ServiceError

KeyArg = Annotated[str, typer.Argument(help="Its id or name.")]


@dataclass(frozen=True)
class Resource:
    """``path``: ``/supernets``; ``noun``: ``supernet``; ``columns``: the listing's extra (title, cell) pairs."""

    path: str
    noun: str
    columns: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = ()


def progress_line(s: dict[str, Any]) -> str:
    p = s["progress"]
    fraction = f" ({100 * p['fraction']:.0f}%)" if p.get("fraction") is not None else ""
    elapsed = f", {p['elapsed_seconds']:.0f} s" if p.get("elapsed_seconds") is not None else ""
    return f"{p['phase']}{fraction}{elapsed}: {s['message']}"


def watch(client: Client, r: Resource, key: str, interval: float) -> dict[str, Any]:
    """Print each new status line until the job ends; exits 1 unless it succeeded."""
    last = ""
    while True:
        s = client.json("GET", f"{r.path}/{key}")
        line = f"{s['status']}: {progress_line(s)}"
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
    return s


def commands(r: Resource) -> dict[str, Callable[..., None]]:
    """``status``, ``list`` and ``cancel`` for resource ``r``."""
    def status(key: KeyArg,
               watch_: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends.")] = False,
               interval: Annotated[float, typer.Option("--interval", min=0.2, help="Seconds between polls.")] = 2.0,
               as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
        client = Client(url, token)
        if watch_:
            watch(client, r, key, interval)
            return
        s = client.json("GET", f"{r.path}/{key}")
        if as_json:
            print_json(s)
            return
        console.print(f"{s['id']}  {s['name']}  [bold]{s['status']}[/bold]  attempt {s['attempts']}")
        console.print(progress_line(s), markup=False)
        if s["error"]:
            console.print(f"error: {s['error']}", markup=False)

    def list_(offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
              limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
              as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
        page = Client(url, token).json("GET", r.path, params={"offset": offset, "limit": limit})
        if as_json:
            print_json(page)
            return
        table = Table(title=_page_title(f"{r.noun}s", offset, len(page["data"]), page["count"], owned=True))
        for col in ("id", "name", *(title for title, _ in r.columns), "status", "progress", "created"):
            table.add_column(col, overflow="fold")
        for s in page["data"]:
            fraction = s["progress"].get("fraction")
            table.add_row(s["id"], s["name"], *(cell(s) for _, cell in r.columns), s["status"],
                          "-" if fraction is None else f"{100 * fraction:.0f}%",
                          s["created_at"][:19].replace("T", " "))
        console.print(table)

    def cancel(key: KeyArg,
               wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for a running one to "
                                                   "stop.")] = 30.0,
               url: UrlOpt = None, token: TokenOpt = None) -> None:
        client = Client(url, token)
        try:
            s = client.json("POST", f"{r.path}/{key}/cancel")
        except ServiceError as exc:
            if exc.status != 409 or client.json("GET", f"{r.path}/{key}")["status"] != "cancelled":
                raise
            err_console.print(f"{r.noun} {key} is already cancelled")
            return
        deadline = time.monotonic() + wait
        while s["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
            s = client.json("GET", f"{r.path}/{key}")
        err_console.print(f"{r.noun} {s['name']}: {s['status']}" + (f" ({s['error']})" if s["error"] else ""),
                          markup=False)

    status.__doc__ = f"A {r.noun}'s status, phase and progress. With --watch, exits 1 unless it succeeded."
    list_.__doc__ = f"Your {r.noun}s, newest first."
    cancel.__doc__ = f"Cancel a queued {r.noun} now, or stop a running one within a training step."
    return {"status": status, "list": list_, "cancel": cancel}
