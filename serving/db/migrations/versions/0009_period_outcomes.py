"""How each rep's judged quota periods ended (`period_outcomes`): the rep page's earlier risks beside
their outcomes, written by the batch jobs that judge earlier lists (serving.jobs).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "period_outcomes",
        sa.Column("rep_id", sa.String(length=100), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("attainment", sa.Float(), nullable=True),
        sa.Column("missed", sa.Boolean(), nullable=False),
        sa.Column("known_on", sa.Date(), nullable=False),
        sa.Column("judged_by", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("rep_id", "period_start", name="pk_period_outcomes"),
    )


def downgrade() -> None:
    # The next batch job that judges earlier lists writes the outcomes again.
    op.drop_table("period_outcomes")
