"""``nas train ARCH``: train a network to convergence (optionally from a supernet, with a teacher), export it."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nas.cli._output import err_console, print_json
from nas.cli.client import TokenOpt, UrlOpt


def _dataset(text: str, resolution: int, subset: int | None) -> dict[str, Any]:
    kind, _, path = text.partition(":")
    return {"kind": kind, "resolution": resolution, "subset": subset, **({"path": path} if path else {})}


def train(arch_name: Annotated[str | None, typer.Argument(help="Reference name, architecture JSON file (a "
                                                          "search's best.json) or one-line string.")] = None,
          dataset: Annotated[str, typer.Option("--dataset", help="digits, cifar10:DIR or imagefolder:DIR.")] = "digits",
          resolution: Annotated[int, typer.Option("--resolution", min=8, help="Training resolution.")] = 32,
          subset: Annotated[int | None, typer.Option("--subset", min=2, help="Examples kept in total.")] = None,
          epochs: Annotated[int, typer.Option("--epochs", min=1)] = 30,
          lr: Annotated[float, typer.Option("--lr")] = 0.05,
          batch_size: Annotated[int, typer.Option("--batch-size", min=2)] = 64,
          seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
          supernet: Annotated[str | None, typer.Option("--supernet", help="Supernet name or file (for --inherit "
                                                       "and supernet teachers).")] = None,
          inherit: Annotated[bool, typer.Option("--inherit", help="Start from the supernet's weights.")] = False,
          teacher: Annotated[str | None, typer.Option("--teacher", help="largest (the supernet's largest subnet), "
                                                      "a state file (.pt) or an architecture taken from the "
                                                      "supernet.")] = None,
          alpha: Annotated[float, typer.Option("--alpha", help="KD weight (1 - alpha for cross-entropy).")] = 0.5,
          temperature: Annotated[float, typer.Option("--temperature", help="KD temperature tau.")] = 4.0,
          out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory (default: "
                                                   "NAS_HOME/trained/HASH-FINGERPRINT).")] = None,
          device: Annotated[str | None, typer.Option("--device", help="Device profile: the trained network is also "
                                                     "written in its deployed format (model.tflite, model.xml, "
                                                     "model.int8.onnx...) with model.provenance.json.")] = None,
          fresh: Annotated[bool, typer.Option("--fresh", help="Ignore an existing checkpoint.")] = False,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
          submit: Annotated[bool, typer.Option("--submit", help="Train on the service's train workers instead "
                                               "(POST /trainings; --supernet names a service supernet); prints "
                                               "the training's id. `nas trainings` follows it.")] = False,
          search: Annotated[str | None, typer.Option("--search", help="With --submit, instead of ARCH: a "
                                                     "succeeded search's id; its best network is trained.")] = None,
          name: Annotated[str | None, typer.Option("--name", help="With --submit: a label.")] = None,
          watch: Annotated[bool, typer.Option("--watch", help="With --submit: follow it until it ends.")] = False,
          url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Train to convergence; Ctrl-C saves a checkpoint and the same command resumes. Prints the summary JSON.
    With --submit, the service trains it (resumed by another worker if its worker dies)."""
    from nas._documents import first_error
    from nas.arch import load_architecture
    from nas.errors import SpecError
    from nas.settings import get_settings
    from nas.training import TrainJob, train_network

    options: dict[str, Any] = {
        "dataset": _dataset(dataset, resolution, subset),
        "recipe": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "resolution": resolution, "seed": seed},
        "supernet": supernet, "inherit": inherit,
        "teacher": {"source": teacher, "alpha": alpha, "temperature": temperature} if teacher else None}
    if arch_name is not None and search is not None:
        raise typer.BadParameter("give ARCH or --search ID, not both", param_hint="ARCH")
    if arch_name is None and (search is None or not submit):
        raise typer.BadParameter("give ARCH (or, with --submit, --search ID)", param_hint="ARCH")
    if submit:
        from nas.cli.train_client import architecture_value
        from nas.cli.train_client import submit as submit_training

        network = {"search": search} if search is not None else {"architecture": architecture_value(str(arch_name))}
        document = {k: v for k, v in {**options, **network, "name": name, "device": device}.items() if v is not None}
        submit_training(document, watch, url, token)
        return
    assert arch_name is not None
    arch = load_architecture(arch_name)
    try:
        job = TrainJob.model_validate(options)
    except ValidationError as exc:
        raise SpecError("nas train", *first_error(exc)) from None
    onnx = True
    if device is not None:
        from nas.latency import load_profile

        onnx = load_profile(device).runtime != "torch-eager"  # an unknown profile stops here, before training
    out_dir = out or get_settings().home / "trained" / f"{arch.hash}-{job.fingerprint}"
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=err_console,
                  disable=quiet) as bar:
        task = bar.add_task(f"train {arch.hash}", total=None, info="loading")

        def on_progress(p) -> None:  # type: ignore[no-untyped-def]
            loss = "" if math.isnan(p.loss) else f"loss {p.loss:.3f}"
            acc = "" if p.val_accuracy is None else f"val {p.val_accuracy:.4f}"
            bar.update(task, total=p.total_steps, completed=p.step, info=f"epoch {p.epoch}/{p.epochs} {loss} {acc}")

        try:
            summary = train_network(arch, job, out_dir, fresh=fresh, onnx=onnx, device=device,
                                    on_progress=on_progress)
        except KeyboardInterrupt:
            err_console.print(f"interrupted: checkpoint saved in {out_dir}; run the same command again to resume")
            raise typer.Exit(130) from None
    res = summary["resolution"]
    err_console.print(f"accuracy {summary['accuracy']:.4f} at {res['trained']}x{res['trained']} (exported at "
                      f"{res['exported']}x{res['exported']}); files: {', '.join(summary['files'].values())}")
    print_json({k: summary[k] for k in ("arch_hash", "accuracy", "resolution", "history", "files", "fingerprint")})
