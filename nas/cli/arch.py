"""``nas arch``: stats, show, sample, validate, export, import-weights."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from nas.arch import Architecture, load_architecture, to_string
from nas.cli._output import console, print_json
from nas.cost import estimate
from nas.errors import ExportError

if TYPE_CHECKING:
    from nas.data import DatasetSpec

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


def _calibration(value: str | None) -> DatasetSpec | None:
    """``digits``, ``cifar10:PATH``, ``imagefolder:PATH`` or ``none`` (seeded noise)."""
    from nas.data import DatasetSpec

    if value is None or value == "none":
        return None
    kind, _, path = value.partition(":")
    try:
        return DatasetSpec.model_validate({"kind": kind, **({"path": path} if path else {})})
    except ValidationError as exc:
        from nas._documents import first_error

        loc, reason = first_error(exc)
        raise ExportError(f"--calibration {value!r}: {loc}: {reason}") from None


@app.command()
def export(name: ArchArg,
           fmt: Annotated[str | None, typer.Option("--format", "-f", help="onnx, tflite or openvino.")] = None,
           out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write --format's file.")] = None,
           int8: Annotated[bool, typer.Option("--int8", help="Full-integer post-training quantization.")] = False,
           device: Annotated[str | None, typer.Option("--device", "-d", help=(
               "Write what this device profile times: its format, int8 and calibration."))] = None,
           calibration: Annotated[str | None, typer.Option("--calibration", help=(
               "int8 calibration images: digits (default), cifar10:PATH, imagefolder:PATH or none."))] = None,
           calibration_images: Annotated[int | None, typer.Option("--calibration-images", min=1)] = None,
           weights: Annotated[Path | None, typer.Option("--weights", help=(
               "A trained state file (from a search or --state) to export instead of fresh weights."))] = None,
           onnx: Annotated[Path | None, typer.Option("--onnx", help="Write an ONNX model here.")] = None,
           state: Annotated[Path | None, typer.Option("--state", help="Write a PyTorch state file here.")] = None,
           resolution: ResolutionOpt = None, classes: ClassesOpt = None) -> None:
    """Build the network and export it as deployed. ``--format`` (or ``--device``) writes exactly the
    artifact the matching device profile times; ONNX output is checked against PyTorch in ONNX Runtime."""
    from nas.export import (
        calibration_inputs,
        check_onnx,
        export_artifact,
        export_onnx,
        export_state,
        fresh_model,
        load_state,
    )
    from nas.latency._artifacts import calibration_spec, deployed_format

    options: dict[str, object] = {}
    if device is not None:
        from nas.latency import load_profile

        profile = load_profile(device)
        fmt_int8 = deployed_format(profile)
        if fmt_int8 is None:
            raise ExportError(f"device {profile.name} runs PyTorch modules: export --state instead")
        if fmt is not None and fmt != fmt_int8[0]:
            raise ExportError(f"device {profile.name} times {fmt_int8[0]} files, not {fmt}")
        fmt, int8, options = fmt_int8[0], fmt_int8[1] or int8, dict(profile.options)
    if fmt is None and onnx is None and state is None:
        raise typer.BadParameter("give --format (or --device) with --out, and/or --onnx, --state")
    if fmt is not None and out is None:
        raise typer.BadParameter("--format needs --out")
    if calibration is not None:
        spec = _calibration(calibration)
        options["calibration"] = "none" if spec is None else spec.model_dump(mode="json")
    if calibration_images is not None:
        options["calibration_images"] = calibration_images
    if weights is not None:
        arch, model, _ = load_state(weights)
        if resolution is not None or classes is not None:
            arch = arch.with_(**{k: v for k, v in (("resolution", resolution), ("num_classes", classes))
                                 if v is not None})
    else:
        arch = _load(name, resolution, classes)
        model = fresh_model(arch)
    model.eval()
    if fmt is not None and out is not None:
        inputs = None
        if int8:
            calib = calibration_spec(options)
            dataset = None if calib["dataset"] is None else _calibration_dict(calib["dataset"])
            inputs = calibration_inputs(arch, dataset, calib["images"])
        written = export_artifact(arch, out, fmt, int8=int8, model=model, calibration=inputs)
        console.print(f"wrote {written}" + (f" (+ {written.with_suffix('.bin')})" if fmt == "openvino" else ""))
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


def _calibration_dict(data: dict[str, object]) -> DatasetSpec:
    from nas.data import DatasetSpec

    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as exc:
        from nas._documents import first_error

        loc, reason = first_error(exc)
        raise ExportError(f"calibration: {loc}: {reason}") from None
