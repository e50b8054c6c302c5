"""The verification audit: one row per decision, no biometric data.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_external_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('reference_scores', sa.JSON(), nullable=False),
    sa.Column('best_reference_id', sa.Integer(), nullable=True),
    sa.Column('decision', sa.Boolean(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('model_version', sa.String(length=80), nullable=False),
    sa.Column('query_sha256', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['best_reference_id'], ['references.id'], name=op.f('fk_verifications_best_reference_id_references'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_verifications_customer_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verifications'))
    )
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verifications_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_verifications_customer_external_id'), ['customer_external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_verifications_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    op.drop_table('verifications')
