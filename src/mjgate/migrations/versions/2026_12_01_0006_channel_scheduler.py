"""channel scheduler: capacity, daily caps, active hours, circuit breaker, gateway queue, in-flight limits

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TERMINAL = "('SUCCESS', 'FAILURE', 'CANCEL')"


def upgrade() -> None:
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_running', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_queued', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('daily_cap', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('active_hours', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('mode_fallback', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('in_flight', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('day_start', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('day_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('cooldown_until', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('cooldowns_in_row', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('fast_exhausted_until', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_in_flight', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('in_flight', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('last_dispatch_at', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_in_flight', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('in_flight', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queued_at', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('holds_slot', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('channel_slot', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('upstream_request', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('dispatched_at', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_tasks_queued', ['queued_at'], unique=False)
        batch_op.create_index('ix_tasks_channel_slot', ['channel_slot', 'channel_id'], unique=False)
    # Tasks already under way hold their user's and key's slots, so finishing them releases those;
    # channel slots start at 0 (channels had no capacity before this).
    op.execute(f"UPDATE tasks SET holds_slot = (status NOT IN {TERMINAL})")
    op.execute(f"UPDATE users SET in_flight = (SELECT COUNT(*) FROM tasks WHERE tasks.user_id = users.id "
               f"AND tasks.status NOT IN {TERMINAL})")
    op.execute(f"UPDATE api_keys SET in_flight = (SELECT COUNT(*) FROM tasks WHERE tasks.token_id = api_keys.id "
               f"AND tasks.status NOT IN {TERMINAL})")


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_channel_slot')
        batch_op.drop_index('ix_tasks_queued')
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('upstream_request')
        batch_op.drop_column('channel_slot')
        batch_op.drop_column('holds_slot')
        batch_op.drop_column('queued_at')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('in_flight')
        batch_op.drop_column('max_in_flight')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('last_dispatch_at')
        batch_op.drop_column('in_flight')
        batch_op.drop_column('max_in_flight')
    with op.batch_alter_table('channels', schema=None) as batch_op:
        for column in ('fast_exhausted_until', 'cooldowns_in_row', 'cooldown_until', 'day_count', 'day_start',
                       'in_flight', 'mode_fallback', 'active_hours', 'daily_cap', 'max_queued', 'max_running'):
            batch_op.drop_column(column)
