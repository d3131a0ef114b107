"""the contract service's job queue: procrastinate's schema (infra/db/job_schema.py, from the pinned wheel) and
``contract_job_errors``, the error of each failed attempt for ops (procrastinate keeps none).

Its jobs (rendering a contract's final text ahead of signing, contract/worker.py) were a thread of the web
process, lost with it; they live in the service's own database now, run by ``leaseline worker --service
contract``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

from infra.db import job_schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    job_schema.create(op.get_bind(), errors="contract_job_errors")


def downgrade() -> None:
    job_schema.drop(op.get_bind(), errors="contract_job_errors")
