"""``nas spaces``: list and describe search spaces."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.table import Table

from nas.cli._output import console, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Shipped search spaces with their number of choices and size."""
    from nas.spaces import list_spaces, load_space

    rows = []
    for name in list_spaces():
        space = load_space(name)
        dims = space.dimensions()
        size = sum(math.log10(len(v)) for v in dims.values())
        rows.append({"name": name, "stages": len(space.definition.stages), "dimensions": len(dims),
                     "log10_size": round(size, 1), "description": space.definition.description})
    if as_json:
        print_json(rows)
        return
    table = Table(title="search spaces")
    columns = ("name", "stages", "dimensions", "log10_size")
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in columns))
    console.print(table)


@app.command()
def show(name: str) -> None:
    """Every choice dimension of a space and its options."""
    from nas.spaces import load_space

    space = load_space(name)
    table = Table(title=f"{space.name}: {space.definition.description}")
    table.add_column("dimension")
    table.add_column("options")
    for dim, options in space.dimensions().items():
        table.add_row(dim, ", ".join(str(o) for o in options))
    console.print(table)
