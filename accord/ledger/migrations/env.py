"""Alembic environment for the ledger's schema.

`Ledger.open` runs the migrations programmatically and hands its own connection over in
``config.attributes["connection"]`` (SQLite and PostgreSQL alike). Run by hand, with
``alembic -c accord/ledger/migrations/alembic.ini -x url=<database URL> upgrade head``,
it opens the URL itself (an async URL such as ``sqlite+aiosqlite:///accord.db``).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from accord.ledger.schema import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    from accord.ledger.store import ledger_url

    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass -x url=<database URL or SQLite path>")
    return ledger_url(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_offline()
else:
    run_online()
