"""The ledger: signed envelopes appended in order to a hash chain, stored with SQLAlchemy.

A SQLite file by default; any SQLAlchemy async URL (PostgreSQL via asyncpg) works.
Appends are batched: one INSERT of many rows per call, no per-row round trips.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from accord.ledger.chain import GENESIS, entry_hash
from accord.ledger.envelope import Envelope, now_iso
from accord.ledger.schema import entries, metadata, sessions

DEFAULT_LEDGER = "accord.db"


class LedgerError(RuntimeError):
    """The ledger refused an operation; nothing was written."""


def ledger_url(location: str | Path) -> str:
    """A database URL from a path or URL: plain paths become SQLite files."""
    text = str(location)
    if "://" in text:
        if text.startswith("sqlite://"):
            text = text.replace("sqlite://", "sqlite+aiosqlite://", 1)
        if text.startswith("postgresql://"):
            text = text.replace("postgresql://", "postgresql+asyncpg://", 1)
        return text
    return f"sqlite+aiosqlite:///{Path(text).expanduser().resolve()}"


def describe_location(url: str) -> str:
    if url.startswith("sqlite"):
        return url.split(":///", 1)[1]
    return url.split("@")[-1] if "@" in url else url


@dataclass(frozen=True)
class Entry:
    session_id: str
    idx: int
    actor: str
    seq: int
    kind: str
    envelope: str
    prev_hash: str
    entry_hash: str

    def parsed(self) -> Envelope:
        return Envelope.model_validate_json(self.envelope)

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.envelope)["body"]


@dataclass(frozen=True)
class SessionInfo:
    id: str
    spec_id: str
    title: str
    created_at: str
    status: str
    outcome: dict[str, Any] | None
    entries: int


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Ledger:
    """Append-only store of sessions' signed envelopes."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._heads: dict[str, tuple[int, str]] = {}

    @classmethod
    async def open(cls, location: str | Path = DEFAULT_LEDGER, *, create: bool = True) -> Ledger:
        url = ledger_url(location)
        if url.startswith("sqlite") and not create:
            path = Path(describe_location(url))
            if not path.exists():
                raise LedgerError(f"no ledger at {path}")
        engine = create_async_engine(url)
        if url.startswith("sqlite"):
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        return cls(engine, url)

    @property
    def location(self) -> str:
        return describe_location(self.url)

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def create_session(
        self, session_id: str, spec_id: str, title: str, spec_hash: str
    ) -> None:
        async with self.engine.begin() as conn:
            existing = await conn.scalar(select(sessions.c.id).where(sessions.c.id == session_id))
            if existing is not None:
                raise LedgerError(f"session {session_id!r} already exists in {self.location}")
            await conn.execute(
                insert(sessions),
                [
                    {
                        "id": session_id,
                        "spec_id": spec_id,
                        "title": title,
                        "created_at": now_iso(),
                        "spec_hash": spec_hash,
                        "status": "running",
                        "outcome": None,
                    }
                ],
            )
        self._heads[session_id] = (0, GENESIS)

    async def finish_session(self, session_id: str, outcome: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(status="ended", outcome=json.dumps(outcome, sort_keys=True))
            )

    async def _head(self, conn: Any, session_id: str) -> tuple[int, str]:
        head = self._heads.get(session_id)
        if head is not None:
            return head
        row = (
            await conn.execute(
                select(entries.c.idx, entries.c.entry_hash)
                .where(entries.c.session_id == session_id)
                .order_by(entries.c.idx.desc())
                .limit(1)
            )
        ).first()
        return (row.idx + 1, row.entry_hash) if row else (0, GENESIS)

    async def append(self, session_id: str, envelopes: Sequence[Envelope]) -> list[Entry]:
        """Chain and store a batch in one transaction; all or nothing."""
        return await self.append_canonical(session_id, [(e, e.canonical()) for e in envelopes])

    async def append_canonical(
        self, session_id: str, items: Sequence[tuple[Envelope, bytes]]
    ) -> list[Entry]:
        """As `append`, for callers that already hold each envelope's canonical bytes."""
        if not items:
            return []
        async with self.engine.begin() as conn:
            idx, prev = await self._head(conn, session_id)
            rows: list[dict[str, Any]] = []
            for env, canonical in items:
                if env.session != session_id:
                    raise LedgerError(
                        f"envelope from {env.actor} seq {env.seq} belongs to session "
                        f"{env.session!r}, not {session_id!r}"
                    )
                digest = entry_hash(prev, canonical)
                rows.append(
                    {
                        "session_id": session_id,
                        "idx": idx,
                        "actor": env.actor,
                        "seq": env.seq,
                        "kind": env.kind,
                        "envelope": canonical.decode("utf-8"),
                        "prev_hash": prev,
                        "entry_hash": digest,
                    }
                )
                idx, prev = idx + 1, digest
            try:
                await conn.execute(insert(entries), rows)
            except IntegrityError as exc:
                self._heads.pop(session_id, None)
                raise LedgerError(
                    f"append to {session_id!r} refused (duplicate sequence number?): {exc.orig}"
                ) from None
        self._heads[session_id] = (idx, prev)
        return [Entry(**row) for row in rows]

    async def entries(self, session_id: str, kinds: Sequence[str] | None = None) -> list[Entry]:
        query = select(entries).where(entries.c.session_id == session_id)
        if kinds:
            query = query.where(entries.c.kind.in_(list(kinds)))
        async with self.engine.connect() as conn:
            result = await conn.execute(query.order_by(entries.c.idx))
            return [Entry(**row._mapping) for row in result]

    async def sessions(self) -> list[SessionInfo]:
        counts = (
            select(entries.c.session_id, func.count().label("n"))
            .group_by(entries.c.session_id)
            .subquery()
        )
        query = (
            select(sessions, func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(counts, counts.c.session_id == sessions.c.id)
            .order_by(sessions.c.created_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            SessionInfo(
                id=r.id,
                spec_id=r.spec_id,
                title=r.title,
                created_at=r.created_at,
                status=r.status,
                outcome=json.loads(r.outcome) if r.outcome else None,
                entries=r.n,
            )
            for r in rows
        ]

    async def find_session(self, ref: str) -> SessionInfo:
        """A session by exact id, unique prefix, spec id (latest run) or 'latest'."""
        known = await self.sessions()
        if not known:
            raise LedgerError(f"the ledger {self.location} holds no sessions")
        if ref == "latest":
            return known[-1]
        exact = [s for s in known if s.id == ref]
        if exact:
            return exact[0]
        by_spec = [s for s in known if s.spec_id == ref]
        if by_spec:
            return by_spec[-1]
        prefixed = [s for s in known if s.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if prefixed:
            names = ", ".join(s.id for s in prefixed[:5])
            raise LedgerError(f"{ref!r} matches several sessions: {names}")
        raise LedgerError(f"no session {ref!r} in {self.location} (try `accord sessions`)")
