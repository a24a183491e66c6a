"""Artifacts (trained weights, ONNX files) in the database, and admin tokens.

The files a search produces were written to the local NAS_HOME of whichever worker made them, so in a
deployment of several machines the API, the driver and the other train workers could not read them. They
are rows of ``nas_artifacts`` now, scoped by the Optuna study they belong to. ``nas_tokens.admin`` marks
the tokens that may open the dashboard (which shows every user's searches).

Revision ID: nas0002
Revises: nas0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "nas0002"
down_revision = "nas0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nas_artifacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("study_name", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("study_name", "name", name="uq_nas_artifacts_study_name"),
    )
    with op.batch_alter_table("nas_tokens") as batch:
        batch.add_column(sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("nas_tokens") as batch:
        batch.drop_column("admin")
    op.drop_table("nas_artifacts")
