"""contract tables: contracts, signatures, evidence log entries and checkpoints

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contract_contracts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('application_id', sa.String(length=64), nullable=False),
    sa.Column('dealer_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('snapshot_enc', sa.Text(), nullable=False),
    sa.Column('lessee_masked', sa.String(length=64), nullable=False),
    sa.Column('draft_key', sa.String(length=255), nullable=False),
    sa.Column('draft_sha256', sa.String(length=64), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('signed_key', sa.String(length=255), nullable=True),
    sa.Column('signed_version', sa.String(length=255), nullable=True),
    sa.Column('signed_sha256', sa.String(length=64), nullable=True),
    sa.Column('retain_until', UTCDateTime(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('signed_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_contracts')),
    sa.UniqueConstraint('application_id', name=op.f('uq_contract_contracts_application_id')),
    sa.UniqueConstraint('number', name=op.f('uq_contract_contracts_number')),
    sa.UniqueConstraint('signed_sha256', name=op.f('uq_contract_contracts_signed_sha256'))
    )
    with op.batch_alter_table('contract_contracts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_contracts_dealer_id'), ['dealer_id'], unique=False)

    op.create_table('contract_ledger_checkpoints',
    sa.Column('tree_size', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('timestamp', UTCDateTime(), nullable=False),
    sa.Column('origin', sa.String(length=128), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('tree_size', name=op.f('pk_contract_ledger_checkpoints'))
    )
    op.create_table('contract_ledger_entries',
    sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('entry', sa.LargeBinary(), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('idx', name=op.f('pk_contract_ledger_entries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_contract_ledger_entries_idempotency_key'))
    )
    with op.batch_alter_table('contract_ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_ledger_entries_subject'), ['subject'], unique=False)

    op.create_table('contract_signatures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('contract_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=24), nullable=False),
    sa.Column('signer', sa.String(length=128), nullable=False),
    sa.Column('certificate_serial', sa.String(length=64), nullable=False),
    sa.Column('certificate_sha256', sa.String(length=64), nullable=False),
    sa.Column('identity', sa.JSON(), nullable=False),
    sa.Column('ledger_index', sa.Integer(), nullable=True),
    sa.Column('signed_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contract_contracts.id'],
                            name=op.f('fk_contract_signatures_contract_id_contract_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_signatures'))
    )
    with op.batch_alter_table('contract_signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_signatures_contract_id'), ['contract_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contract_signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contract_signatures_contract_id'))

    op.drop_table('contract_signatures')
    with op.batch_alter_table('contract_ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contract_ledger_entries_subject'))

    op.drop_table('contract_ledger_entries')
    op.drop_table('contract_ledger_checkpoints')
    with op.batch_alter_table('contract_contracts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contract_contracts_dealer_id'))

    op.drop_table('contract_contracts')
