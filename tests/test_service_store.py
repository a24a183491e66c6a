"""The service store against real databases (SQLite file and a fresh PostgreSQL database): the contract
the API and the workers rely on, and the migrations living beside Optuna's in one database."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text, update

from nas.errors import ConflictError, NotFoundError
from nas.search import parse_spec
from nas.service import (
    SearchStatus,
    authenticate,
    cancel_requested,
    create_search,
    create_token,
    current_revision,
    get_search,
    head_revision,
    list_searches,
    list_tokens,
    live_devices,
    mark_finished,
    mark_running,
    register_device,
    request_cancel,
    revoke_token,
    update_progress,
    upgrade,
)
from nas.service._models import DeviceRow, ServiceBase, utcnow
from nas.storage import engine_for, session_scope

from .api_support import SPEC
from .skips import NOT_APPLICABLE

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service

spec = parse_spec(SPEC)


def _owner() -> str:
    import uuid

    return uuid.uuid4().hex


def test_status_enum() -> None:
    assert [s.value for s in SearchStatus] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert not SearchStatus.queued.is_final() and not SearchStatus.running.is_final()
    assert all(SearchStatus(s).is_final() for s in ("succeeded", "failed", "cancelled"))


def test_create_get_and_records_are_plain_values(database_url: str) -> None:
    owner = _owner()
    rec = create_search(database_url, spec, owner)
    assert len(rec.id) == 32 and rec.study_name == f"search-{rec.id}"
    assert rec.status is SearchStatus.queued and rec.attempts == 0 and not rec.cancel_requested
    assert rec.spec == spec.model_dump(mode="json") and rec.budget_trials == 4 and rec.result is None
    assert rec.created_at.tzinfo is not None and rec.started_at is None and rec.finished_at is None
    assert dataclasses.is_dataclass(rec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = SearchStatus.running  # type: ignore[misc]
    assert get_search(database_url, rec.id) == rec  # owner None: any owner (workers)
    assert get_search(database_url, rec.id, owner) == rec
    with pytest.raises(NotFoundError, match="search"):
        get_search(database_url, rec.id, _owner())  # someone else's: not found, not forbidden
    with pytest.raises(NotFoundError):
        get_search(database_url, "0" * 32)


def test_list_pages_filters_and_owners(database_url: str) -> None:
    owner, other = _owner(), _owner()
    ids = [create_search(database_url, spec, owner).id for _ in range(5)]
    create_search(database_url, spec, other)
    page, count = list_searches(database_url, owner, offset=0, limit=2)
    assert count == 5 and len(page) == 2
    seen = [r.id for off in (0, 2, 4) for r in list_searches(database_url, owner, offset=off, limit=2)[0]]
    assert sorted(seen) == sorted(ids) and seen[0] == ids[-1]  # newest first, no repeats
    mark_running(database_url, ids[0], "w1")
    running, count = list_searches(database_url, owner, status=SearchStatus.running)
    assert count == 1 and running[0].id == ids[0]
    assert list_searches(database_url, owner, status="failed") == ([], 0)


def test_worker_lifecycle(database_url: str) -> None:
    rec = create_search(database_url, spec, _owner())
    assert mark_running(database_url, rec.id, "host-a")
    first = get_search(database_url, rec.id)
    assert first.status is SearchStatus.running and first.worker == "host-a" and first.attempts == 1
    assert mark_running(database_url, rec.id, "host-b")  # its lease expired (0 s): a resume after a lost worker
    second = get_search(database_url, rec.id)
    assert second.attempts == 2 and second.started_at == first.started_at and second.worker == "host-b"
    update_progress(database_url, rec.id, finished=2, budget_trials=4, running=1, elapsed_seconds=12.5,
                    best_value=0.61, best_trial=1, message="trial 1 finished")
    mid = get_search(database_url, rec.id)
    assert (mid.finished, mid.running, mid.best_trial, mid.best_value, mid.message) == (
        2, 1, 1, 0.61, "trial 1 finished")
    result = {"best": {"trial": 1, "reward": float("nan")}, "pareto": [], "files": {}}
    mark_finished(database_url, rec.id, SearchStatus.succeeded, result=result)
    done = get_search(database_url, rec.id)
    assert done.status is SearchStatus.succeeded and done.finished_at is not None and done.running == 0
    assert done.result == {"best": {"trial": 1, "reward": None}, "pareto": [], "files": {}}  # NaN -> null
    update_progress(database_url, rec.id, finished=3, budget_trials=4, running=0, elapsed_seconds=1.0,
                    best_value=0.1, best_trial=0, message="late")
    assert get_search(database_url, rec.id).finished == 2  # a late report does not rewrite a final search
    assert not mark_running(database_url, rec.id, "host-c")
    with pytest.raises(ValueError):
        mark_finished(database_url, rec.id, SearchStatus.running)


def test_failure_keeps_the_error(database_url: str) -> None:
    rec = create_search(database_url, spec, None)
    mark_running(database_url, rec.id, "w")
    mark_finished(database_url, rec.id, SearchStatus.failed, error="unknown search space 'x'")
    failed = get_search(database_url, rec.id)
    assert failed.status is SearchStatus.failed and failed.error == "unknown search space 'x'"


def test_cancel_transitions(database_url: str) -> None:
    owner = _owner()
    queued = create_search(database_url, spec, owner)
    cancelled = request_cancel(database_url, queued.id, owner)
    assert cancelled.status is SearchStatus.cancelled and cancelled.finished_at is not None
    assert cancel_requested(database_url, queued.id)
    assert not mark_running(database_url, queued.id, "w")  # the queued message is then ignored
    with pytest.raises(ConflictError, match="already cancelled"):
        request_cancel(database_url, queued.id, owner)

    running = create_search(database_url, spec, owner)
    assert not cancel_requested(database_url, running.id)
    mark_running(database_url, running.id, "w")
    flagged = request_cancel(database_url, running.id, owner)
    assert flagged.status is SearchStatus.running and flagged.cancel_requested
    assert cancel_requested(database_url, running.id)
    assert request_cancel(database_url, running.id, owner).cancel_requested  # asking twice is fine
    assert not mark_running(database_url, running.id, "w2")  # a redelivery does not restart it
    mark_finished(database_url, running.id, SearchStatus.cancelled, error="cancelled by its owner")
    with pytest.raises(ConflictError):
        request_cancel(database_url, running.id, owner)
    with pytest.raises(NotFoundError):
        request_cancel(database_url, running.id, _owner())


def test_devices_upsert_and_ttl(database_url: str) -> None:
    profile = f"prof-{_owner()[:8]}"
    register_device(database_url, profile, "fp1", "host-a", {"cpu": "x"})
    register_device(database_url, profile, "fp2", "host-a", {"cpu": "y"})
    register_device(database_url, profile, "fp1", "host-b", {})
    mine = [d for d in live_devices(database_url, 60) if d.profile == profile]
    assert [(d.hostname, d.fingerprint) for d in mine] == [("host-a", "fp2"), ("host-b", "fp1")]
    assert mine[0].info == {"cpu": "y"} and mine[0].last_seen >= mine[0].first_seen
    with session_scope(database_url) as s:
        s.execute(update(DeviceRow).where(DeviceRow.profile == profile, DeviceRow.hostname == "host-b")
                  .values(last_seen=utcnow() - timedelta(minutes=5)))
    assert [d.hostname for d in live_devices(database_url, 60) if d.profile == profile] == ["host-a"]


def test_tokens(database_url: str) -> None:
    name = f"tok-{_owner()[:8]}"
    record, token = create_token(database_url, name)
    assert token.startswith("nas_") and len(token) > 40 and record.prefix == token[:8]
    assert authenticate(database_url, token) == record
    assert authenticate(database_url, token + "x") is None and authenticate(database_url, "garbage") is None
    assert name in [t.name for t in list_tokens(database_url)]
    with pytest.raises(ConflictError, match="already exists"):
        create_token(database_url, name)
    with session_scope(database_url) as s:
        stored = s.execute(text("SELECT token_hash FROM nas_tokens WHERE name = :n"), {"n": name}).scalar_one()
    assert token not in stored and len(stored) == 64  # only the sha256 is kept
    revoke_token(database_url, name)
    assert authenticate(database_url, token) is None
    with pytest.raises(NotFoundError):
        revoke_token(database_url, name)


def test_migrations_beside_optuna(database_url: str) -> None:
    import optuna
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from nas.search._study import rdb_storage

    assert upgrade(database_url) == head_revision() == current_revision(database_url)  # idempotent
    optuna.create_study(study_name=f"coexist-{_owner()}", storage=rdb_storage(database_url))
    tables = set(inspect(engine_for(database_url)).get_table_names())
    assert {"nas_searches", "nas_tokens", "nas_devices", "nas_alembic_version"} <= tables
    assert {"alembic_version", "studies", "trials"} <= tables  # Optuna's own, untouched by ours
    with engine_for(database_url).connect() as conn:
        ours = conn.execute(text("SELECT version_num FROM nas_alembic_version")).scalars().all()
        theirs = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert ours == [head_revision()] and theirs and theirs != ours
        ctx = MigrationContext.configure(conn, opts={"include_name": lambda name, type_, parents: type_ != "table"
                                                     or (name or "").startswith("nas_")
                                                     and name != "nas_alembic_version"})
        assert compare_metadata(ctx, ServiceBase.metadata) == []  # models and migrations agree
    assert upgrade(database_url) == head_revision()  # and again after Optuna stamped its own table


def test_nan_free_values_survive(database_url: str) -> None:
    rec = create_search(database_url, spec, None)
    mark_running(database_url, rec.id, "w")
    update_progress(database_url, rec.id, finished=1, budget_trials=None, running=0, elapsed_seconds=0.5,
                    best_value=0.25, best_trial=0, message="")
    got = get_search(database_url, rec.id)
    assert got.budget_trials is None and math.isclose(got.best_value or 0, 0.25)


def test_reads_survive_their_pooled_connections_being_killed(database_url: str) -> None:
    """The API's reads skip the pre-ping round trip; a pooled connection killed under them (PostgreSQL
    restarted, an idle timeout) costs one retry on a fresh connection, not an error."""
    if not database_url.startswith("postgresql"):
        pytest.skip(f"{NOT_APPLICABLE} SQLite has no server connections to kill")
    import psycopg
    from sqlalchemy.engine import make_url

    token, secret = create_token(database_url, "killed-connections")
    search = create_search(database_url, parse_spec(SPEC), token.id)
    assert authenticate(database_url, secret) == token  # pools a reading connection
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
    assert killed is not None and killed[0] >= 1
    assert authenticate(database_url, secret) == token
    assert get_search(database_url, search.id, token.id).id == search.id
    assert [r.id for r in list_searches(database_url, token.id)[0]] == [search.id]
