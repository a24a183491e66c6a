"""``nas arch``: stats, show, sample, validate, export, import-weights."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nas.arch import Architecture, load_architecture, to_string
from nas.cli._output import console, print_json
from nas.cost import estimate

app = typer.Typer(no_args_is_help=True)

ArchArg = Annotated[str, typer.Argument(help="Reference name, architecture JSON file or one-line string.")]
ResolutionOpt = Annotated[int | None, typer.Option("--resolution", "-r", help="Input resolution (>= 32).")]
ClassesOpt = Annotated[int | None, typer.Option("--classes", "-k", help="Number of classes.")]


def _load(name: str, resolution: int | None, classes: int | None) -> Architecture:
    arch = load_architecture(name)
    changes: dict[str, object] = {}
    if resolution is not None:
        changes["resolution"] = resolution
    if classes is not None:
        changes["num_classes"] = classes
    return arch.with_(**changes) if changes else arch


def stats_dict(arch: Architecture) -> dict[str, object]:
    return {"hash": arch.hash, "space": arch.space, "resolution": arch.resolution,
            "num_classes": arch.num_classes, **estimate(arch).as_dict(), "string": to_string(arch)}


@app.command()
def stats(name: ArchArg, resolution: ResolutionOpt = None, classes: ClassesOpt = None,
          as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False) -> None:
    """Analytic params, MACs, activation memory and memory access cost."""
    arch = _load(name, resolution, classes)
    data = stats_dict(arch)
    if as_json:
        print_json(data)
        return
    table = Table(title=f"{name} @ {arch.resolution}x{arch.resolution}, {arch.num_classes} classes")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in data.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


@app.command()
def show(name: ArchArg, resolution: ResolutionOpt = None, classes: ClassesOpt = None) -> None:
    """A per-block table: shapes, choices and cost of every part."""
    arch = _load(name, resolution, classes)
    report = estimate(arch)
    blocks = {path: block for path, _, block in arch.blocks()}
    table = Table(title=f"{name}  hash {arch.hash}  ({arch.space or 'no space'})")
    for col in ("part", "type", "in", "out", "mid", "k", "s", "se", "act", "g", "params", "MMACs"):
        table.add_column(col, justify="right" if col not in ("part", "type", "act") else "left")
    for part in report.parts:
        c, h, _ = part.in_shape
        oc, oh, _ = part.out_shape
        b = blocks.get(part.name)
        choice = [str(b.mid), str(b.kernel), str(b.stride), "y" if b.se else "", b.activation.value,
                  str(b.groups)] if b else ["", "", "", "", "", ""]
        short = part.name.replace("stages[", "s").replace("][", ".b").rstrip("]")
        table.add_row(short, part.name if b is None else b.type.value, f"{c}x{h}", f"{oc}x{oh}", *choice,
                      f"{part.cost.params:,}", f"{part.cost.macs / 1e6:.2f}")
    t = report.total
    table.add_row("total", "", "", "", "", "", "", "", "", "", f"{t.params:,}", f"{t.macs / 1e6:.2f}")
    console.print(table)


@app.command()
def sample(space: Annotated[str, typer.Option("--space", "-s", help="Space name or YAML file.")],
           n: Annotated[int, typer.Option("--n", min=1, max=100_000)] = 1,
           seed: Annotated[int, typer.Option("--seed")] = 0,
           classes: ClassesOpt = None) -> None:
    """Print N random members of a space, one architecture JSON per line (reproducible by seed)."""
    from nas.spaces import load_space

    loaded = load_space(space)
    rng = random.Random(seed)
    for _ in range(n):
        print_json(loaded.sample(rng=rng, num_classes=classes).model_dump(mode="json"))


@app.command()
def validate(name: ArchArg,
             space: Annotated[str | None, typer.Option("--space", "-s", help="Check membership here.")] = None
             ) -> None:
    """Check an architecture's structure and its membership in a space (its own one by default)."""
    from nas.spaces import check_member, load_space

    arch = load_architecture(name)
    space_name = space or arch.space
    if space_name:
        check_member(load_space(space_name), arch)
    console.print(f"ok: {arch.hash} is valid" + (f" and a member of {space_name}" if space_name else ""))


@app.command()
def export(name: ArchArg,
           onnx: Annotated[Path | None, typer.Option("--onnx", help="Write an ONNX model here.")] = None,
           state: Annotated[Path | None, typer.Option("--state", help="Write a PyTorch state file here.")] = None,
           resolution: ResolutionOpt = None, classes: ClassesOpt = None) -> None:
    """Build the network and export it; the ONNX output is checked against PyTorch in ONNX Runtime."""
    from nas.builder import build_model
    from nas.export import check_onnx, export_onnx, export_state

    if onnx is None and state is None:
        raise typer.BadParameter("give --onnx and/or --state")
    arch = _load(name, resolution, classes)
    model = build_model(arch).eval()
    if onnx is not None:
        export_onnx(arch, onnx, model=model)
        diff = check_onnx(arch, onnx, model)
        console.print(f"wrote {onnx} (max |ORT - PyTorch| = {diff:.1e})")
    if state is not None:
        export_state(arch, state, model=model)
        console.print(f"wrote {state}")


@app.command("import-weights")
def import_weights(
    weights: Annotated[Path, typer.Argument(help="A torchvision MobileNetV3 state dict (.pth).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write this project's state file here.")],
    arch: Annotated[str | None, typer.Option(
        "--arch", help="Reference name, file or string to load into; default: the MobileNetV3 reference "
                       "the weights fit.")] = None,
    resolution: ResolutionOpt = None,
) -> None:
    """Load torchvision MobileNetV3-Large/Small weights into the matching reference (same outputs)."""
    from nas.export import export_state
    from nas.pretrained import import_torchvision

    target, model, provenance = import_torchvision(weights, arch)
    if resolution is not None:
        target = target.with_(resolution=resolution)
    export_state(target, out, model=model, provenance=provenance)
    console.print(f"imported {provenance['tensors']} tensors into {provenance['architecture']} "
                  f"({target.num_classes} classes, hash {target.hash}); wrote {out}")
