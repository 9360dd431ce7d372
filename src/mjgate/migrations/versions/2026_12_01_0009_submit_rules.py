"""submit rules: idempotency keys, banned words and moderation blocks, per-parameter price snapshots

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-01 14:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0006'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'idempotency_keys',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('user_id', BigId, nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('task_id', BigId, nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_idempotency_keys_task_id_tasks')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_keys_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
        sa.UniqueConstraint('user_id', 'key', name=op.f('uq_idempotency_keys_user_id_key')),
    )
    op.create_index(op.f('ix_idempotency_keys_task_id'), 'idempotency_keys', ['task_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_idempotency_keys_task_id'), table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
