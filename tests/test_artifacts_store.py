"""Artifacts in the service database (SQLite file and a fresh PostgreSQL database): stored, replaced, listed
and removed per study, names that could leave their scope refused, and the migration that adds them (and
the tokens' admin flag) applied to a database created at the previous revision."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import text

from nas.errors import NASError, NotFoundError
from nas.service import authenticate, create_token, current_revision, head_revision, list_tokens, upgrade
from nas.service.artifacts import (
    checkpoint_name,
    checkpoint_trial,
    delete_artifacts,
    list_artifacts,
    put_artifact,
    read_artifact,
)
from nas.storage import engine_for

pytest_plugins = ["tests.service_fixtures"]  # database_url


def _study() -> str:
    return f"search-{uuid.uuid4().hex}"


def test_an_artifact_reads_back_byte_for_byte_and_a_second_write_replaces_it(database_url: str) -> None:
    study = _study()
    first = bytes(range(256)) * 4096  # 1 MiB of every byte value: binary-safe on both databases
    record = put_artifact(database_url, study, "best.onnx", first)
    assert (record.size, record.sha256, record.media_type) == (len(first), hashlib.sha256(first).hexdigest(),
                                                               "application/onnx")
    assert read_artifact(database_url, study, "best.onnx") == first
    put_artifact(database_url, study, "best.onnx", b"second")
    assert read_artifact(database_url, study, "best.onnx") == b"second"
    assert [(a.name, a.size) for a in list_artifacts(database_url, study)] == [("best.onnx", 6)]


def test_artifacts_are_scoped_by_study_listed_by_name_and_deleted_by_name(database_url: str) -> None:
    study, other = _study(), _study()
    for n in (3, 1, 2):
        put_artifact(database_url, study, checkpoint_name(n), f"weights {n}".encode())
    put_artifact(database_url, study, "best.pt", b"state")
    put_artifact(database_url, other, checkpoint_name(1), b"someone else's")
    assert [a.name for a in list_artifacts(database_url, study)] == [
        "best.pt", "checkpoints/trial-00001.pt", "checkpoints/trial-00002.pt", "checkpoints/trial-00003.pt"]
    checkpoints = list_artifacts(database_url, study, prefix="checkpoints/")
    assert [checkpoint_trial(a.name) for a in checkpoints] == [1, 2, 3]
    assert checkpoint_trial("best.pt") is None
    assert delete_artifacts(database_url, study, [checkpoint_name(1), checkpoint_name(3), "missing"]) == 2
    assert [a.name for a in list_artifacts(database_url, study, prefix="checkpoints/")] == [checkpoint_name(2)]
    assert read_artifact(database_url, other, checkpoint_name(1)) == b"someone else's"
    with pytest.raises(NotFoundError, match="unknown artifact 'checkpoints/trial-00001.pt'"):
        read_artifact(database_url, study, checkpoint_name(1))


@pytest.mark.parametrize("name", ["../best.onnx", "a/../../b", "/etc/passwd", "a//b", ".", "..", "a/./b", "", ".hidden",
                                  "sp ace", "x" * 256])
def test_a_name_that_is_not_a_plain_relative_name_is_refused(database_url: str, name: str) -> None:
    with pytest.raises(NASError, match="invalid artifact name"):
        put_artifact(database_url, _study(), name, b"x")
    with pytest.raises(NASError, match="invalid artifact name"):
        read_artifact(database_url, _study(), name)


def test_the_migration_adds_artifacts_and_the_admin_flag_to_a_database_at_the_previous_revision(
        database_url: str) -> None:
    """Down to nas0001 (tokens without the flag), a token made there, then up again: it is a user token."""
    from alembic import command

    from nas.service.migrate import alembic_config

    upgrade(database_url)
    command.downgrade(alembic_config(database_url), "nas0001")
    assert current_revision(database_url) == "nas0001"
    with engine_for(database_url).begin() as conn:
        assert "nas_artifacts" not in _tables(conn)
        conn.execute(text("INSERT INTO nas_tokens (id, name, token_hash, prefix, created_at) "
                          "VALUES ('old0', :n, :h, 'nas_old', CURRENT_TIMESTAMP)"),
                     {"n": f"old-{uuid.uuid4().hex[:6]}", "h": uuid.uuid4().hex + uuid.uuid4().hex})
    assert upgrade(database_url) == head_revision() == "nas0004"
    assert [t.admin for t in list_tokens(database_url) if t.id == "old0"] == [False]
    _, token = create_token(database_url, f"admin-{uuid.uuid4().hex[:6]}", admin=True)
    record = authenticate(database_url, token)
    assert record is not None and record.admin
    put_artifact(database_url, _study(), "best.pt", b"after the upgrade")


def _tables(conn: object) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(conn).get_table_names())
