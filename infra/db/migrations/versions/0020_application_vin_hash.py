"""``applications.vin_hash``: the keyed hash of the car's VIN (walk-through finding 6: one VIN was accepted on two
leases). The VIN stays in the encrypted draft; the vehicle step finds another application holding the same car by
this column (an HMAC under the PII vault's look-up key, as the ID and mobile numbers are found: infra/pii.py).
Existing applications get it from their drafts (a valid VIN only).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-09
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def _vault():  # type: ignore[no-untyped-def]
    from infra.pii import PiiVault
    from infra.pii import configured_key

    var_dir = Path(os.environ.get("LEASELINE_VAR_DIR", "var")).resolve()
    return PiiVault(configured_key(os.environ.get("LEASELINE_PII_KEY", ""), var_dir))


def upgrade() -> None:
    from kyc.vin import check_vin

    op.add_column("applications", sa.Column("vin_hash", sa.String(64), nullable=True))
    op.create_index(op.f("ix_applications_vin_hash"), "applications", ["vin_hash"])
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, draft_enc FROM applications WHERE draft_enc <> ''")).all()
    if not rows:
        return
    vault = _vault()
    for application_id, token in rows:
        vin = check_vin(str(json.loads(vault.decrypt(token, f"application:{application_id}")).get("vin", "")))
        if vin.valid:
            conn.execute(sa.text("UPDATE applications SET vin_hash = :hash WHERE id = :id"),
                         {"hash": vault.lookup_hash(vin.normalized, "vin"), "id": application_id})


def downgrade() -> None:
    op.drop_index(op.f("ix_applications_vin_hash"), "applications")
    op.drop_column("applications", "vin_hash")
