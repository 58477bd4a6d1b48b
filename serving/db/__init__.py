"""The service's database: tables (SQLAlchemy 2), engine set-up, and Alembic migrations shipped with the package."""
