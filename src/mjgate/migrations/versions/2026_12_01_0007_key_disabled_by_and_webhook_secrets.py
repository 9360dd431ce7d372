"""who disabled an API key (an admin's disabling only an admin lifts); each user's webhook signing secret

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_by', sa.String(length=16), nullable=True))
    # Keys disabled before this was recorded: nobody knows who did it, so only an admin may lift it.
    op.execute("UPDATE api_keys SET disabled_by = 'admin' WHERE status = 'disabled'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        # 'whsec_' + base64 of 32 random bytes; created on first use for users older than this.
        batch_op.add_column(sa.Column('webhook_secret', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('webhook_secret')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('disabled_by')
