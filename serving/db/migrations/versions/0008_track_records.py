"""How each batch's list turned out (`track_records`): its figures against the outcomes of its periods,
written by a later batch job (serving.jobs, reporting.track_record).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON_ = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "track_records",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("judged_by", sa.String(length=32), nullable=False),
        sa.Column("judged_as_of", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures", JSON_, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_track_records_job_id_jobs"),
        sa.PrimaryKeyConstraint("job_id", name="pk_track_records"),
    )


def downgrade() -> None:
    # The figures are recomputed by the next batch job after an upgrade: nothing is lost for good.
    op.drop_table("track_records")
