"""Invitations keep the customer's mobile number encrypted (AES-GCM) with a keyed hash, not in clear.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _vault():  # type: ignore[no-untyped-def]
    from infra.pii import PiiVault
    from infra.pii import configured_key

    var_dir = Path(os.environ.get("LEASELINE_VAR_DIR", "var")).resolve()
    return PiiVault(configured_key(os.environ.get("LEASELINE_PII_KEY", ""), var_dir))


def upgrade() -> None:
    op.add_column("invitations", sa.Column("mobile_enc", sa.Text(), nullable=True))
    op.add_column("invitations", sa.Column("mobile_hash", sa.String(64), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, mobile FROM invitations")).all()
    if rows:
        vault = _vault()
        for invitation_id, mobile in rows:
            conn.execute(sa.text("UPDATE invitations SET mobile_enc = :enc, mobile_hash = :hash WHERE id = :id"),
                         {"enc": vault.encrypt(mobile, "invitation_mobile"),
                          "hash": vault.lookup_hash(mobile, "mobile"), "id": invitation_id})
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("mobile")
        batch.alter_column("mobile_enc", existing_type=sa.Text(), nullable=False)
        batch.alter_column("mobile_hash", existing_type=sa.String(64), nullable=False)
    op.create_index(op.f("ix_invitations_mobile_hash"), "invitations", ["mobile_hash"])


def downgrade() -> None:
    op.drop_index(op.f("ix_invitations_mobile_hash"), "invitations")
    op.add_column("invitations", sa.Column("mobile", sa.String(11), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, mobile_enc FROM invitations")).all()
    if rows:
        vault = _vault()
        for invitation_id, token in rows:
            conn.execute(sa.text("UPDATE invitations SET mobile = :m WHERE id = :id"),
                         {"m": vault.decrypt(token, "invitation_mobile"), "id": invitation_id})
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("mobile_hash")
        batch.drop_column("mobile_enc")
        batch.alter_column("mobile", existing_type=sa.String(11), nullable=False)
