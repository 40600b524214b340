"""Bringing a ledger database to the current schema with Alembic, programmatically.

`Ledger.open` calls :func:`upgrade` on its own connection, for SQLite and PostgreSQL
alike: a new database gets every revision; a database at an older revision is upgraded;
a database made before migrations existed (the baseline tables, no ``alembic_version``)
is stamped with the baseline revision first and then upgraded, so its rows are kept.
On PostgreSQL a transaction-scoped advisory lock serialises concurrent openers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001_baseline"
_LOCK_KEY = 0x61636F7264  # "accord": the advisory lock id on PostgreSQL


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> str:
    """Bring the database behind ``connection`` to the head revision; return it.

    Runs inside the caller's transaction (commit follows on success).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    head = head_revision()
    current = current_revision(connection)
    if current == head:
        return head
    config = _config(connection)
    if current is None and "entries" in inspect(connection).get_table_names():
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    return head
