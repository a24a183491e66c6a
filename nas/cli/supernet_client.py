"""``nas supernet submit / status / list / cancel / download``: supernets trained by the service
(``POST /supernets``), with the same options and output conventions as ``nas submit`` and friends."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from nas.cli import jobs_client
from nas.cli._output import err_console
from nas.cli.client import Client, TokenOpt, UrlOpt, _download
from nas.cli.jobs_client import KeyArg, Resource, commands

SUPERNETS = Resource("/supernets", "supernet", (("space", lambda s: str(s["spec"].get("space"))),))


def submit(spec_file: Annotated[Path, typer.Argument(help="Supernet spec (YAML), as for `nas supernet train`.")],
           name: Annotated[str | None, typer.Option("--name", help="Override the spec's name.")] = None,
           epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Override recipe.epochs.")] = None,
           largest_epochs: Annotated[int | None, typer.Option(
               "--largest-epochs", min=0, help="Override largest_epochs (below the epochs).")] = None,
           watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
           url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Train a supernet on the service's train workers; prints its id. Searches then name it in
    `proxy.supernet`."""
    from nas._documents import non_json_value, read_yaml_mapping
    from nas.errors import SpecError
    from nas.supernet import with_overrides

    document: dict[str, Any] = read_yaml_mapping(spec_file, lambda f, r: SpecError(str(spec_file), f, r),
                                                 "a supernet spec")
    bad = non_json_value(document)
    if bad is not None:
        raise SpecError(str(spec_file), *bad)
    document = with_overrides(document, name=name, epochs=epochs, largest_epochs=largest_epochs)
    client = Client(url, token)
    supernet = client.json("POST", "/supernets", json=document)
    sys.stdout.write(supernet["id"] + "\n")
    err_console.print(f"submitted supernet {supernet['id']} ({supernet['name']}): {supernet['status']}")
    if watch:
        jobs_client.watch(client, SUPERNETS, supernet["id"], 2.0)


def download(key: KeyArg, output: Annotated[Path, typer.Option("--output", "-o", help="File to write (.pt).")],
             url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Write the trained supernet to a file (usable by `nas supernet eval/extract/specialize` and `nas run`)."""
    _download(Client(url, token), f"/supernets/{key}/file", output)
    err_console.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    named: dict[str, Callable[..., None]] = {"submit": submit, **commands(SUPERNETS), "download": download}
    for name, command in named.items():
        app.command(name)(command)
