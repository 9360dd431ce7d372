"""dashboard indexes: covering indexes for the aggregations and the status filter

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:00:00

The dashboards (mjgate.stats.repository) read every task of a range; with every column they
aggregate in the index, each query is one index range scan and never touches the wide task rows.
"""

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

STATS_COLUMNS = ['action', 'mode', 'status', 'quota', 'refunded_at', 'finish_time']


def upgrade() -> None:
    op.create_index('ix_tasks_stats', 'tasks', ['submit_time', 'channel_id', 'user_id', *STATS_COLUMNS])
    op.create_index('ix_tasks_user_stats', 'tasks', ['user_id', 'submit_time', *STATS_COLUMNS])
    op.create_index('ix_tasks_status_submit', 'tasks', ['status', 'submit_time', 'id'])


def downgrade() -> None:
    op.drop_index('ix_tasks_status_submit', table_name='tasks')
    op.drop_index('ix_tasks_user_stats', table_name='tasks')
    op.drop_index('ix_tasks_stats', table_name='tasks')
