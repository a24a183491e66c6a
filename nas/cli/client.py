"""CLI client of the NAS service: ``nas submit``, ``status``, ``best``, ``trials``, ``cancel``, ``searches``.

Every command talks HTTP to ``--url`` (``NAS_API_URL``) with ``--token`` (``NAS_API_TOKEN``). An error
answer becomes a ``ServiceError`` carrying the API's own message, which ``nas.cli.main`` prints as one
line with a non-zero exit code.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nas.cli._output import console, err_console, print_json
from nas.errors import NASError, ServiceError

if TYPE_CHECKING:
    import httpx

FINAL = ("succeeded", "failed", "cancelled")

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="NAS_API_URL", show_envvar=True,
                                            help="Service address (default http://127.0.0.1:8000).")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="NAS_API_TOKEN", show_envvar=True,
                                              help="API token from `nas token create NAME`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]


def error_message(response: httpx.Response) -> str:
    """The API's reason in one line: a plain ``detail``, or 'field.path: msg' for validation errors."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        parts = []
        for item in detail:
            loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
            parts.append(f"{'.'.join(loc)}: {item.get('msg')}" if loc else str(item.get("msg")))
        return "; ".join(parts)
    text = " ".join(response.text.split())[:200]
    return f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}"


class Client:
    """A thin httpx wrapper: base URL, bearer token, and errors turned into ``ServiceError``."""

    def __init__(self, url: str | None, token: str | None, timeout: float = 30.0) -> None:
        import httpx

        from nas.settings import get_settings

        settings = get_settings()
        self.url = (url or settings.api_url).rstrip("/")
        token = token or settings.api_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach the NAS service at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise ServiceError(error_message(response), response.status_code)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()


def _read_spec(path: Path) -> dict[str, Any]:
    """YAML syntax and what JSON cannot carry (NaN, infinities, dates) are checked here, naming the field;
    the service validates the rest itself (it knows its spaces, devices and data directories)."""
    from nas._documents import non_json_value
    from nas.errors import SpecError
    from nas.search._spec import read_spec_document

    document = read_spec_document(path)
    bad = non_json_value(document)
    if bad is not None:
        raise SpecError(str(path), *bad)
    return document


def submit(spec_file: Annotated[Path, typer.Argument(help="Search spec (YAML), as for `nas run`.")],
           name: Annotated[str | None, typer.Option("--name", help="Override the spec's name.")] = None,
           trials: Annotated[int | None, typer.Option("--trials", min=1, help="Override the trial budget.")] = None,
           watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
           url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Submit a search to the service; prints its id on stdout."""
    document = _read_spec(spec_file)
    if name is not None:
        document["name"] = name
    if trials is not None:
        document["budget"] = {**(document.get("budget") or {}), "trials": trials}
    client = Client(url, token)
    search = client.json("POST", "/searches", json=document)
    sys.stdout.write(search["id"] + "\n")
    err_console.print(f"submitted search {search['id']} ({search['name']}): {search['status']}")
    for warning in search.get("warnings", []):
        err_console.print(f"warning: {warning}", markup=False)
    if watch:
        _watch(client, search["id"], 2.0)


def status(search_id: Annotated[str, typer.Argument(help="Search id.")],
           watch: Annotated[bool, typer.Option("--watch", "-w", help="Progress bar until it ends.")] = False,
           interval: Annotated[float, typer.Option("--interval", min=0.2, help="Seconds between polls.")] = 2.0,
           as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """A search's status, progress and best trial so far. With --watch, exits 1 unless it succeeded."""
    client = Client(url, token)
    if watch:
        _watch(client, search_id, interval)
        return
    search = client.json("GET", f"/searches/{search_id}")
    if as_json:
        print_json(search)
        return
    p, best = search["progress"], search["best"]
    total = p["budget_trials"] if p["budget_trials"] is not None else "-"
    console.print(f"{search['id']}  {search['name']}  [bold]{search['status']}[/bold]"
                  f"{'  (cancel requested)' if search['cancel_requested'] and search['status'] == 'running' else ''}")
    console.print(f"trials {p['finished']}/{total}, {p['running']} running, {p['elapsed_seconds']:.0f} s"
                  f"{'  ' + p['message'] if p['message'] else ''}")
    if best["trial"] is not None:
        verdict = {True: ", within T", False: ", OVER T: no network of this search is within T"}.get(
            best.get("within_target"), "")
        label = "best so far" if search["status"] == "running" else "best"
        console.print(f"{label}: trial {best['trial']}, value {best['value']:.4f}{verdict}")
    if search["error"]:
        console.print(f"error: {search['error']}", markup=False)


def _watch(client: Client, search_id: str, interval: float) -> None:
    """A progress bar on a terminal; elsewhere (a log, CI, a pipe) a line whenever the state changes."""
    search = client.json("GET", f"/searches/{search_id}")
    try:
        if err_console.is_terminal:
            search = _watch_bar(client, search, interval)
        else:
            search = _watch_lines(client, search, interval)
    except KeyboardInterrupt:
        err_console.print("stopped watching; the search goes on (`nas cancel ID` stops it)")
        raise typer.Exit(130) from None
    err_console.print(f"search {search_id}: {search['status']}"
                      + (f": {search['error']}" if search["error"] else ""), markup=False)
    if search["status"] != "succeeded":
        raise typer.Exit(1)


def _watch_note(search: dict[str, Any]) -> str:
    p, best = search["progress"], search["best"]
    note = f"[{search['status']}]"
    if best["value"] is not None:
        note += f" best {best['value']:.4f} (trial {best['trial']})"
    return f"{note} {p['message']}".rstrip()


def _watch_bar(client: Client, search: dict[str, Any], interval: float) -> dict[str, Any]:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[note]}"))
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task(search["name"], total=search["progress"]["budget_trials"], note="")
        while True:
            p = search["progress"]
            bar.update(task, completed=p["finished"], total=p["budget_trials"], note=_watch_note(search))
            if search["status"] in FINAL:
                return search
            time.sleep(interval)
            search = client.json("GET", f"/searches/{search['id']}")


def _watch_lines(client: Client, search: dict[str, Any], interval: float) -> dict[str, Any]:
    last = ""
    while True:
        p = search["progress"]
        total = p["budget_trials"] if p["budget_trials"] is not None else "-"
        line = f"{search['name']}: trials {p['finished']}/{total} {_watch_note(search)}"
        if line != last:
            err_console.print(line, markup=False)
            last = line
        if search["status"] in FINAL:
            return search
        time.sleep(interval)
        search = client.json("GET", f"/searches/{search['id']}")


def best(search_id: Annotated[str, typer.Argument(help="Search id.")],
         output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the JSON here.")] = None,
         onnx: Annotated[Path | None, typer.Option("--onnx", help="Download the best network as ONNX here "
                                                   "(the search must have succeeded with export_onnx).")] = None,
         state: Annotated[Path | None, typer.Option("--state", help="Download its PyTorch state file here "
                                                    "(nas.export.load_state reads it).")] = None,
         deployable: Annotated[Path | None, typer.Option("--deployable", help=(
             "Download the file the search's device timed here (e.g. best.tflite; OpenVINO's .bin goes beside "
             "the .xml), with its provenance as PATH.provenance.json."))] = None,
         url: UrlOpt = None, token: TokenOpt = None) -> None:
    """The best architecture so far (canonical JSON), to a file or stdout; with --onnx/--state/--deployable,
    the trained best network's files (the architecture is then printed only with -o)."""
    client = Client(url, token)
    for name, path in (("best.onnx", onnx), ("best.pt", state)):
        if path is not None:
            _download(client, f"/searches/{search_id}/artifacts/{name}", path)
            err_console.print(f"{name} written to {path}")
    if deployable is not None:
        _download_deployable(client, search_id, deployable)
    if (onnx is not None or state is not None or deployable is not None) and output is None:
        return
    response = client.request("GET", f"/searches/{search_id}/best")
    if response.headers.get("X-NAS-Within-Target") == "false":
        err_console.print(f"warning: trial {response.headers.get('X-NAS-Trial', '?')} is OVER T "
                          f"({response.headers.get('X-NAS-Latency-Ms', '?')} ms > T = "
                          f"{response.headers.get('X-NAS-Target-Ms', '?')} ms): no network of this search is within T",
                          markup=False)
    text = json.dumps(response.json(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    err_console.print(f"trial {response.headers.get('X-NAS-Trial', '?')}: architecture written to {output}")


def _download_deployable(client: Client, search_id: str, to: Path) -> None:
    """The device's file(s) named by the search's provenance: the first to ``to``, companions (OpenVINO's
    weights) beside it under the same stem, the provenance to ``<to>.provenance.json``."""
    from nas.service.artifacts import BEST_PROVENANCE

    base = f"/searches/{search_id}/artifacts"
    provenance = client.json("GET", f"{base}/{BEST_PROVENANCE}")
    first, *companions = provenance["files"]
    targets = {first: to, **{name: to.with_suffix(Path(name).suffix) for name in companions}}
    for name, path in targets.items():
        _download(client, f"{base}/{name}", path)
        if hashlib.sha256(path.read_bytes()).hexdigest() != provenance["files"][name]["sha256"]:
            raise NASError(f"{name}: the downloaded file's sha256 differs from its provenance's")
    note = to.with_name(to.name + ".provenance.json")
    note.write_text(json.dumps(provenance, indent=2) + "\n")
    err_console.print(f"{first} ({provenance['format']}{', int8' if provenance['int8'] else ''}, "
                      f"{provenance['device']['profile']}) written to {to}; provenance in {note}")


def _download(client: Client, path: str, to: Path) -> None:
    """Written to a temporary file beside ``to`` and renamed, so an interrupted download leaves no half file."""
    response = client.request("GET", path)
    to.parent.mkdir(parents=True, exist_ok=True)
    partial = to.with_name(to.name + ".part")
    partial.write_bytes(response.content)
    partial.replace(to)


def trials(search_id: Annotated[str, typer.Argument(help="Search id.")],
           offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
           limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
           as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """A page of a search's trials."""
    page = Client(url, token).json("GET", f"/searches/{search_id}/trials", params={"offset": offset, "limit": limit})
    if as_json:
        print_json(page)
        return
    table = Table(title=_page_title("trials", offset, len(page["data"]), page["count"]))
    for col in ("trial", "state", "accuracy", "latency ms", "reward", "params", "MMACs", "architecture"):
        table.add_column(col, overflow="fold")
    for t in page["data"]:
        table.add_row(str(t["trial"]), t["state"], _num(t["accuracy"]), _num(t["latency_ms"], 3), _num(t["reward"]),
                      _num(t["params"], 0), _num(t["macs"] / 1e6 if t["macs"] else None, 1), t["arch_string"] or "")
    console.print(table)


def cancel(search_id: Annotated[str, typer.Argument(help="Search id.")],
           wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for a running search "
                                               "to stop before returning.")] = 30.0,
           url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Cancel a queued search now, or stop a running one (its running trials end as failed, "cancelled").
    Prints what really happened; a search that had already ended is reported as such."""
    client = Client(url, token)
    try:
        search = client.json("POST", f"/searches/{search_id}/cancel")
    except ServiceError as exc:
        if exc.status != 409:
            raise
        if client.json("GET", f"/searches/{search_id}")["status"] != "cancelled":
            raise  # already succeeded or failed: the API's one-line reason, exit code 1
        err_console.print(f"search {search_id} is already cancelled")
        return
    deadline = time.monotonic() + wait
    while search["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        search = client.json("GET", f"/searches/{search_id}")
    if search["status"] == "running":
        err_console.print(f"search {search_id}: cancel requested; its driver has not stopped it within {wait:.0f} s "
                          "(`nas status ID` shows when it has)")
    elif search["status"] == "cancelled":
        detail = search["error"] or search["progress"]["message"]
        err_console.print(f"search {search_id}: cancelled ({detail})", markup=False)
    else:  # it ended on its own before the cancel reached its driver
        err_console.print(f"search {search_id}: {search['status']} before the cancel took effect", markup=False)


def searches(status_filter: Annotated[str | None, typer.Option("--status", help="queued, running, succeeded, "
                                                                "failed or cancelled.")] = None,
             offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
             limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
             as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Your searches, newest first."""
    params: dict[str, Any] = {"offset": offset, "limit": limit}
    if status_filter:
        params["status"] = status_filter
    page = Client(url, token).json("GET", "/searches", params=params)
    if as_json:
        print_json(page)
        return
    table = Table(title=_page_title("searches", offset, len(page["data"]), page["count"], owned=True))
    for col in ("id", "name", "status", "trials", "best", "created"):
        table.add_column(col, overflow="fold")
    for s in page["data"]:
        p = s["progress"]
        total = p["budget_trials"] if p["budget_trials"] is not None else "-"
        table.add_row(s["id"], s["name"], s["status"], f"{p['finished']}/{total}", _num(s["best"]["value"]),
                      s["created_at"][:19].replace("T", " "))
    console.print(table)


def _page_title(what: str, offset: int, shown: int, count: int, *, owned: bool = False) -> str:
    """``owned``: the listing is the token's own (searches, supernets), which an empty page should say, since
    an admin token sees every user's searches only in ``nas dashboard``."""
    if shown:
        return f"{what} {offset + 1}-{offset + shown} of {count}"
    if owned and count == 0:
        return f"no {what} under this token (each token lists its own; `nas dashboard` shows everyone's to admins)"
    return f"no {what} here ({count} in all)"


def _num(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


def register(app: typer.Typer) -> None:
    for command in (submit, status, best, trials, cancel, searches):
        app.command(command.__name__)(command)
