"""Supernets trained by the service (``POST /supernets``).

One row per supernet, addressed by id or by its name (unique in the service, so a search spec's
``proxy.supernet`` can name it). Its checkpoint and final file are artifacts scoped ``supernet-<id>``.

Revision ID: nas0003
Revises: nas0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "nas0003"
down_revision = "nas0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nas_supernets",
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
        sa.UniqueConstraint("name", name="uq_nas_supernets_name"),
    )
    op.create_index("ix_nas_supernets_owner_created", "nas_supernets", ["owner_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_nas_supernets_owner_created", table_name="nas_supernets")
    op.drop_table("nas_supernets")
