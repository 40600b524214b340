from __future__ import annotations
pytest_plugins = ["tests.mqtt_broker"]

import asyncio
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"
EXAMPLES = sorted((ROOT / "examples").glob("*/session.yaml"))


@pytest.fixture
def tiny_path() -> Path:
    return FIXTURES / "tiny.yaml"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"the shared data folder {SHARED} is absent (it sits beside the checkout in CI)")
    return SHARED


def run(coro):  # noqa: ANN001, ANN201 - tiny helper for sync tests
    return asyncio.run(coro)


def service_unavailable(what: str, reason: str) -> None:
    """Skip where the service is missing; in CI (CI=true) that is a failure, not a skip."""
    message = f"{what} is not reachable: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI must run this test for real)")
    pytest.skip(message)


PG_URL = os.environ.get("ACCORD_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger location on each real backend: a SQLite file, and PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        service_unavailable("PostgreSQL", "asyncpg is not installed (pip install -e '.[test]')")

    async def probe() -> None:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(PG_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("select 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), 5))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not here"
        service_unavailable(f"PostgreSQL at {PG_URL}", f"{type(exc).__name__}: {exc}")
    return PG_URL
