"""A failed job's reason as a code (`jobs.error_code`), so that pages say it in the user's language.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: jobs that failed before this revision keep only their English text.
    op.add_column("jobs", sa.Column("error_code", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "error_code")
