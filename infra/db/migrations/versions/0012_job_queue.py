"""The job queue: procrastinate's schema (its tables, types and functions, from the pinned procrastinate 3.10.0:
requirements.lock), and ``job_errors``, the error of each failed attempt for ops (procrastinate keeps none).

A later procrastinate release that changes its schema comes with its own SQL migrations
(``procrastinate/sql/migrations``): apply them in a migration of ours when the pin moves.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

from infra.db import job_schema

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    job_schema.create(op.get_bind(), errors="job_errors")


def downgrade() -> None:
    job_schema.drop(op.get_bind(), errors="job_errors")
