"""Running the service: ``nas serve``, ``nas dashboard``, ``nas token create|list|revoke``, ``nas db upgrade``.

These act on the service's database directly (``NAS_DATABASE_URL``, SQLite in ``NAS_HOME`` by default),
so they run where the API runs, not on a client's machine.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.table import Table

from nas.cli._output import console, err_console

token_app = typer.Typer(no_args_is_help=True, help="API tokens (stored hashed; shown once on creation).")
db_app = typer.Typer(no_args_is_help=True, help="The service database schema (Alembic migrations).")


def _database_url() -> str:
    from nas.settings import get_settings

    return get_settings().resolved_database_url()


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def serve(host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
          workers: Annotated[int, typer.Option("--workers", min=1, help="uvicorn worker processes.")] = 1) -> None:
    """Start the HTTP API (OpenAPI docs at /docs); migrates the database on start."""
    import uvicorn

    from nas.settings import get_settings

    level = get_settings().log_level.upper()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_level=level.lower())


def dashboard(port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
              host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1") -> None:
    """Start optuna-dashboard on the service database (every search is the study search-<id>), for admin
    tokens only (`nas token create NAME --admin`): it shows every user's searches. Sign in at /login."""
    import uvicorn

    from api.dashboard import create_dashboard
    from nas.settings import get_settings

    url = _database_url()
    app = create_dashboard(url)
    err_console.print(f"optuna-dashboard on {_shown(url)} at http://{host}:{port}/ (admin tokens; sign in at "
                      f"http://{host}:{port}/login)")
    sys.stderr.flush()
    uvicorn.run(app, host=host, port=port, log_level=get_settings().log_level.lower())


@token_app.command("create")
def token_create(name: Annotated[str, typer.Argument(help="Who or what the token is for; unique.")],
                 admin: Annotated[bool, typer.Option("--admin", help="May open `nas dashboard`, which shows "
                                                     "every user's searches.")] = False) -> None:
    """Create a token and print it on stdout. It is stored hashed: this is the only time it is shown."""
    from nas.service import create_token

    record, token = create_token(_database_url(), name, admin=admin)
    sys.stdout.write(token + "\n")
    err_console.print(f"{'admin ' if admin else ''}token {record.name!r} created ({record.prefix}...); it will not "
                      "be shown again. Clients send it as 'Authorization: Bearer <token>' "
                      "(nas: export NAS_API_TOKEN=...)")


@token_app.command("list")
def token_list() -> None:
    """Token names, prefixes and creation times (never the tokens)."""
    from nas.service import list_tokens

    table = Table()
    for col in ("name", "prefix", "admin", "created"):
        table.add_column(col)
    for t in list_tokens(_database_url()):
        table.add_row(t.name, t.prefix + "...", "yes" if t.admin else "", t.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="Token name.")]) -> None:
    """Delete a token: requests with it get 401 from now on. Its searches are kept."""
    from nas.service import revoke_token

    revoke_token(_database_url(), name)
    err_console.print(f"token {name!r} revoked")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option("--revision", help="Target revision.")] = "head") -> None:
    """Migrate the service tables (Optuna's tables in the same database are Optuna's own business)."""
    from nas.service import upgrade

    url = _database_url()
    now = upgrade(url, revision)
    err_console.print(f"{_shown(url)}: service schema at revision {now}")


@db_app.command("current")
def db_current() -> None:
    """The database's schema revision and the newest one this code knows."""
    from nas.service import current_revision, head_revision

    url = _database_url()
    err_console.print(f"{_shown(url)}: at {current_revision(url) or '(none)'}, newest {head_revision()}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("dashboard")(dashboard)
    app.add_typer(token_app, name="token")
    app.add_typer(db_app, name="db")
