"""References looked up by customer and model version through one index (customer_id, model_version).

The composite index replaces the one on customer_id alone, which its leading column covers. With only
the customer_id and model_version indexes, SQLite (without statistics) read every reference through
the model_version index, which all references share, for a list of customers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('references', schema=None) as batch_op:
        batch_op.create_index('ix_references_customer_id_model_version', ['customer_id', 'model_version'], unique=False)
        batch_op.drop_index(batch_op.f('ix_references_customer_id'))


def downgrade() -> None:
    with op.batch_alter_table('references', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_references_customer_id'), ['customer_id'], unique=False)
        batch_op.drop_index('ix_references_customer_id_model_version')
