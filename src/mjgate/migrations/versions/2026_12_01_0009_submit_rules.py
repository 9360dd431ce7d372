"""submit rules: idempotency keys, banned words and moderation blocks, per-parameter price snapshots

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01 14:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0007'
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
    op.create_table(
        'banned_words',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('group_name', sa.String(length=64), nullable=False),
        sa.Column('word', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_banned_words')),
        sa.UniqueConstraint('group_name', 'word', name=op.f('uq_banned_words_group_name_word')),
    )
    op.create_table(
        'moderation_hits',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('user_id', BigId, nullable=False),
        sa.Column('word', sa.String(length=255), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('task_id', sa.BigInteger(), nullable=True),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_moderation_hits_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_hits')),
    )
    op.create_index('ix_moderation_hits_user_created', 'moderation_hits', ['user_id', 'created_at'], unique=False)
    op.create_table(
        'user_blocks',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('user_id', BigId, nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('until', sa.BigInteger(), nullable=False),
        sa.Column('lifted_at', sa.BigInteger(), nullable=True),
        sa.Column('lifted_by', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_blocks_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_blocks')),
    )
    op.create_index('ix_user_blocks_user_until', 'user_blocks', ['user_id', 'until'], unique=False)
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_rule', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('price_rule')
    op.drop_index('ix_user_blocks_user_until', table_name='user_blocks')
    op.drop_table('user_blocks')
    op.drop_index('ix_moderation_hits_user_created', table_name='moderation_hits')
    op.drop_table('moderation_hits')
    op.drop_table('banned_words')
    op.drop_index(op.f('ix_idempotency_keys_task_id'), table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
