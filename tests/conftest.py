"""Shared fixtures: real TLS servers on loopback, certificates made here, SQLite and PostgreSQL.

The tier plugin (tests/support/tiers.py) makes every test carry exactly one of unit,
integration and e2e, and holds unit tests to no sockets and no processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.certmaker import Issued, write_server_files
from monitor.store.sql import SqlStore
from monitor.tlsserver import HttpsServer
from tests.support.chains import Chain, ServeFactory, make_chain
from tests.support.hostile_servers import GarbageServer, Tarpit
from tests.support.postgres import POSTGRES_ADMIN_URL

pytest_plugins = ["tests.support.tiers", "pytester"]


@pytest.fixture(scope="session")
def chain() -> Chain:
    return make_chain()


@pytest.fixture
def serve(tmp_path: Path, chain: Chain) -> Iterator[ServeFactory]:
    """serve(leaf, host=..., port=...) -> a started HttpsServer sending leaf + intermediate."""
    servers: list[HttpsServer] = []

    def start(leaf: Issued, host: str = "127.0.0.1", port: int = 0) -> HttpsServer:
        stem = f"server-{len(servers)}"
        cert, key = write_server_files(tmp_path / "tls", stem, leaf, chain.intermediate)
        server = HttpsServer(cert, key, host=host, port=port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    with Tarpit() as pit:
        yield pit


@pytest.fixture
def garbage_server() -> Iterator[GarbageServer]:
    with GarbageServer() as server:
        yield server


# stores ---------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'apivigil.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards, so runs never collide."""
    schema = f"apivigil_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is required (.ci/run starts it): {error}")
    yield f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    sql_store = SqlStore(store_url)
    sql_store.upgrade_schema()
    yield sql_store
    sql_store.close()


# figures ---------------------------------------------------------------------

_FIGURES = (
    "shadow precision/recall",
    "hostile target kinds held",
    "threads after 20 hostile TLS batches",
    "gzip bomb",
    "kills survived",
    "PostgreSQL stopped",
    "half-open PostgreSQL",
    "disk full",
    "secret values searched",
    "schemathesis cases",
    "schemathesis failures",
    "bad inputs tried with a clear error",
    "alert latency for a healthy receiver next to a slow one",
    "drift precision/recall",
    "slow single-threaded TLS 1.2 server",
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the robustness figures the hardening tests measured (their printed lines)."""
    lines = [
        line.strip()
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call"
        for line in report.capstdout.splitlines()
        if line.strip().startswith(_FIGURES)
    ]
    if lines:
        terminalreporter.section("robustness figures")
        for line in lines:
            terminalreporter.write_line(line)
