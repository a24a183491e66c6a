"""``nas train ... --submit`` and ``nas trainings status / list / cancel / download``: networks trained by the
service's train workers (``POST /trainings``), with the output conventions of ``nas submit`` and friends."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from nas.cli._output import err_console
from nas.cli.client import Client, TokenOpt, UrlOpt, _download
from nas.cli.jobs_client import KeyArg, Resource, commands, watch

TRAININGS = Resource("/trainings", "training", (
    ("network", lambda s: str((s["summary"] or {}).get("arch_hash") or "-")),
    ("accuracy", lambda s: "-" if (s["summary"] or {}).get("accuracy") is None else f"{s['summary']['accuracy']:.4f}"),
))
app = typer.Typer(no_args_is_help=True, help="Networks trained by the service (`nas train --submit`).")


def submit(document: dict[str, Any], watch_it: bool, url: str | None, token: str | None) -> None:
    """POST the training; prints its id (stdout) and, with ``watch_it``, follows it to its end."""
    client = Client(url, token)
    training = client.json("POST", "/trainings", json=document)
    sys.stdout.write(training["id"] + "\n")
    err_console.print(f"submitted training {training['id']} ({training['name']}): {training['status']}")
    if watch_it:
        done = watch(client, TRAININGS, training["id"], 2.0)
        summary = done["summary"] or {}
        err_console.print(f"accuracy {summary.get('accuracy')}; files: {', '.join(done['files'])}", markup=False)


def architecture_value(text: str) -> str | dict[str, Any]:
    """What the service is sent for ARCH: a local JSON file's document (the service reads no files), else the
    reference name or one-line string as given."""
    path = Path(text)
    if path.suffix == ".json" or path.is_file():
        from nas.arch import load_architecture

        return load_architecture(text).model_dump(mode="json")
    return text


def download(key: KeyArg,
             output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the files into.")],
             file: Annotated[list[str] | None, typer.Option("--file", help="Only this file (repeatable), e.g. "
                                                             "model.onnx; default: all of them.")] = None,
             url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Write a succeeded training's files (model.pt, model.onnx, the device's file and its provenance,
    summary.json) into a directory."""
    client = Client(url, token)
    record = client.json("GET", f"/trainings/{key}")
    names = file or list(record["files"])
    if not names:
        raise typer.BadParameter(f"training {key} has no files: it is {record['status']}", param_hint="KEY")
    for name in names:
        _download(client, f"/trainings/{record['id']}/files/{name}", output / name)
    err_console.print(f"wrote {', '.join(names)} into {output}")


_NAMED: dict[str, Callable[..., None]] = {**commands(TRAININGS), "download": download}
for _name, _command in _NAMED.items():
    app.command(_name)(_command)
