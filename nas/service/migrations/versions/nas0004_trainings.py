"""Networks trained by the service (``POST /trainings``, what ``nas train`` does).

One row per training, addressed by id (or by its name, a label: the newest of that name). Its checkpoint,
trained weights, ONNX and device files are artifacts scoped ``training-<id>``.

Revision ID: nas0004
Revises: nas0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "nas0004"
down_revision = "nas0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nas_trainings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_nas_trainings_owner_created", "nas_trainings", ["owner_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_nas_trainings_owner_created", table_name="nas_trainings")
    op.drop_table("nas_trainings")
