"""References looked up by customer and model version through one index (customer_id, model_version).

The composite index replaces the one on customer_id alone, which its leading column covers. With only
the customer_id and model_version indexes, SQLite (without statistics) read every reference through
the model_version index, which all references share, for a list of customers.

On PostgreSQL both indexes are built and dropped CONCURRENTLY, outside a transaction, so enrollments
keep writing references while a large table is indexed. A concurrent build that fails or is cancelled
leaves an INVALID index behind; running the migration again drops that index and builds it anew.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TABLE = 'references'
CUSTOMER_MODEL_VERSION_INDEX = 'ix_references_customer_id_model_version'
CUSTOMER_INDEX = 'ix_references_customer_id'


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _replace_index_concurrently(CUSTOMER_MODEL_VERSION_INDEX, ['customer_id', 'model_version'],
                                    replaced=CUSTOMER_INDEX)
        return
    with op.batch_alter_table('references', schema=None) as batch_op:
        batch_op.create_index('ix_references_customer_id_model_version', ['customer_id', 'model_version'], unique=False)
        batch_op.drop_index(batch_op.f('ix_references_customer_id'))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _replace_index_concurrently(CUSTOMER_INDEX, ['customer_id'], replaced=CUSTOMER_MODEL_VERSION_INDEX)
        return
    with op.batch_alter_table('references', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_references_customer_id'), ['customer_id'], unique=False)
        batch_op.drop_index('ix_references_customer_id_model_version')


def _replace_index_concurrently(name: str, columns: list[str], replaced: str) -> None:
    """Build index ``name`` on references, then drop index ``replaced``, without blocking writes (PostgreSQL).

    CONCURRENTLY cannot run in a transaction: the migration's transaction is committed before this
    block and a new one begun after it. An INVALID ``name`` left by an earlier failed build is dropped
    first; a valid one is kept, so a rerun after a failure past the build does not build it again.
    """
    with op.get_context().autocommit_block():
        if _index_is_invalid(name):
            op.drop_index(op.f(name), table_name=TABLE, postgresql_concurrently=True)
        op.create_index(op.f(name), TABLE, columns, if_not_exists=True, postgresql_concurrently=True)
        op.drop_index(op.f(replaced), table_name=TABLE, if_exists=True, postgresql_concurrently=True)


def _index_is_invalid(name: str) -> bool:
    """Whether index ``name`` (found on the search path, like the table) exists and is INVALID."""
    query = text('SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)')
    return bool(op.get_bind().execute(query, {'name': name}).scalar())
