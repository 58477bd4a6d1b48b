"""What the scoring said with a job's scores (`jobs.notes`), so that HR sees it beside the job.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: jobs run before this revision said their notes only in the service's log.
    op.add_column("jobs", sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "notes")
