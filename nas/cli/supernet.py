"""``nas supernet``: train a weight-sharing supernet, evaluate a subnet one-shot, extract a subnet's weights."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nas.cli._output import err_console, print_json

app = typer.Typer(no_args_is_help=True)

SupernetArg = Annotated[str, typer.Argument(help="A supernet's name (in NAS_HOME/supernets) or a supernet.pt file.")]
ArchArg = Annotated[str, typer.Argument(help="Reference name, architecture JSON file or one-line string.")]


@app.command()
def train(spec_file: Annotated[Path, typer.Argument(help="Supernet spec (YAML); see search_spaces/specs/.")],
          name: Annotated[str | None, typer.Option("--name", help="Run name (default: the spec's name).")] = None,
          epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Override recipe.epochs.")] = None,
          largest_epochs: Annotated[int | None, typer.Option(
              "--largest-epochs", min=0, help="Override largest_epochs (below the epochs).")] = None,
          fresh: Annotated[bool, typer.Option("--fresh", help="Ignore an existing checkpoint.")] = False,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False) -> None:
    """Train (or resume) a supernet into NAS_HOME/supernets/NAME. Ctrl-C saves a checkpoint; run again to resume."""
    from nas.supernet import load_supernet_spec, run_dir, train_supernet

    spec = load_supernet_spec(spec_file, name=name, epochs=epochs, largest_epochs=largest_epochs)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    out = run_dir(spec.name)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=err_console,
                  disable=quiet) as bar:
        task = bar.add_task(f"supernet {spec.name}", total=None, info="loading data")

        def on_progress(p) -> None:  # type: ignore[no-untyped-def]
            acc = " ".join(f"{k} {v:.3f}" for k, v in p.last_eval.items() if k != "epoch")
            loss = "" if math.isnan(p.loss) else f"loss {p.loss:.3f}"
            bar.update(task, total=p.total_steps, completed=p.step,
                       info=f"epoch {p.epoch}/{p.epochs} {p.phase} {loss} {acc}")

        try:
            summary = train_supernet(spec, out, fresh=fresh, on_progress=on_progress)
        except KeyboardInterrupt:
            err_console.print(f"interrupted: checkpoint saved in {out}; run the same command again to resume")
            raise typer.Exit(130) from None
    last = summary["history"][-1] if summary["history"] else {}
    err_console.print(f"supernet {spec.name}: {summary['steps']} steps; validation {last}; file {out / 'supernet.pt'}")
    print_json({"name": spec.name, "file": str(out / "supernet.pt"), "history": summary["history"]})


@app.command("eval")
def eval_(supernet: SupernetArg, arch_name: ArchArg,
          calibration: Annotated[int, typer.Option("--calibration", min=2, help="Training examples for BN statistics.")]
          = 512) -> None:
    """One-shot accuracy of a subnet with inherited weights (BN statistics re-estimated first)."""
    from nas.arch import load_architecture
    from nas.supernet import load_supernet, oneshot_data

    loaded = load_supernet(supernet)
    arch = load_architecture(arch_name).with_(num_classes=loaded.net.num_classes)
    calib_x, val_x, val_y = oneshot_data(loaded, calibration)
    from nas.supernet import evaluate_subnet

    result = evaluate_subnet(loaded.net, arch, calib_x, val_x, val_y)
    print_json({"arch_hash": arch.hash, "accuracy": result.accuracy, "seconds": round(result.seconds, 4),
                "calibration_examples": result.calibration_examples, "supernet": str(loaded.path)})


@app.command()
def extract(supernet: SupernetArg, arch_name: ArchArg,
            output: Annotated[Path, typer.Option("--output", "-o", help="State file to write (.pt).")]) -> None:
    """Write a subnet as the builder's network with the supernet's weights (a state file with provenance)."""
    from nas.arch import load_architecture
    from nas.export import export_state
    from nas.supernet import extract as extract_subnet
    from nas.supernet import load_supernet

    loaded = load_supernet(supernet)
    arch = load_architecture(arch_name).with_(num_classes=loaded.net.num_classes)
    model = extract_subnet(loaded.net, arch)
    export_state(arch, output, model=model, provenance={
        "supernet": str(loaded.path), "supernet_fingerprint": loaded.meta.get("fingerprint"),
        "dataset": loaded.meta.get("dataset"), "weights": "inherited (BN statistics as trained in the supernet)"})
    err_console.print(f"wrote {output}")


@app.command()
def predictor(supernet: SupernetArg,
              samples: Annotated[int, typer.Option("--samples", min=8, help="Subnets evaluated one-shot.")] = 200,
              seed: Annotated[int, typer.Option("--seed")] = 0,
              output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: predictor.json beside "
                                                          "the supernet file.")] = None,
              quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False) -> None:
    """Fit an accuracy predictor on random subnets evaluated one-shot; reports its held-out Kendall tau."""
    from nas.supernet import fit_predictor, load_supernet

    loaded = load_supernet(supernet)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, disable=quiet) as bar:
        task = bar.add_task("one-shot evaluations", total=samples)
        fitted, report = fit_predictor(loaded, samples, seed=seed,
                                       on_sample=lambda done, _total: bar.update(task, completed=done))
    path = fitted.save(output or loaded.path.with_name("predictor.json"),
                       {"supernet": str(loaded.path), "report": report})
    print_json({"file": str(path), **report})
