"""Users remember their dashboard language (`users.lang`), so it follows them to another browser.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: existing users have not chosen; the pages fall back to the cookie.
    op.add_column("users", sa.Column("lang", sa.String(length=16), nullable=True))


def downgrade() -> None:
    # In place on SQLite too (3.35+): a batch copy of `users` would be refused by the tokens'
    # foreign key as soon as a user has a token.
    op.drop_column("users", "lang")
