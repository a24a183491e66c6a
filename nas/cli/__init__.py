"""The ``nas`` command: one typer app assembled from one module per command group."""

from __future__ import annotations

import sys

import typer

from nas.cli import (
    arch,
    client,
    devices,
    doctor,
    latency,
    report,
    run,
    service,
    spaces,
    supernet,
    supernet_client,
    supernet_specialize,
    train,
    train_client,
    worker,
)
from nas.errors import NASError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Platform-aware neural architecture search.")
app.add_typer(arch.app, name="arch", help="Inspect, sample and export architectures.")
app.add_typer(spaces.app, name="spaces", help="Search spaces.")
app.add_typer(latency.app, name="latency", help="Measure and predict latency on device profiles.")
app.add_typer(devices.app, name="devices", help="Device profiles for latency.")
app.add_typer(supernet.app, name="supernet", help="Weight-sharing supernets: train (here or on the service), "
              "one-shot evaluation, extraction, specialisation for a device.")
app.add_typer(train_client.app, name="trainings")
app.command("run")(run.run)
app.command("train")(train.train)
app.command("worker")(worker.worker)
app.command("report")(report.report)
app.command("doctor")(doctor.doctor)
client.register(app)  # submit, status, best, trials, cancel, searches
service.register(app)  # serve, dashboard, token, db
supernet_client.register(supernet.app)  # nas supernet submit, status, list, cancel, download (the service)
supernet.app.command("specialize")(supernet_specialize.specialize)


def main() -> None:
    """Entry point: library errors become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)  # click returns (not raises) typer.Exit codes in this mode
        if isinstance(code, int) and code:
            sys.exit(code)
    except NASError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)  # noqa: T201
        sys.exit(130)
    except Exception as exc:  # usage errors: typer bundles its own click, so match by duck type
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            sys.exit(int(exc.exit_code))
        raise
