"""Idempotency keys (`idempotency_keys`): the answer to a recorded intervention, replayed when a client sends
the same `Idempotency-Key` with the same request again (draft-ietf-httpapi-idempotency-key-header).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("rep_id", sa.String(length=100), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),
    )
    op.create_index("ix_idempotency_keys_rep_id", "idempotency_keys", ["rep_id"])
    op.create_index("ix_idempotency_keys_entry_id", "idempotency_keys", ["entry_id"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    # Keys sent before the downgrade are forgotten: the older version deduplicates by its 60 s window only.
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_index("ix_idempotency_keys_entry_id", table_name="idempotency_keys")
    op.drop_index("ix_idempotency_keys_rep_id", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
