"""Every wait on PostgreSQL ends: sessions carry statement and lock timeouts and keepalives on
both ends, a round trip stuck on a half-open link (tests/support/blackhole_proxy.py) is dropped as
an unavailable store, and the store answers again once the link is back. Real PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from monitor.store.interface import HysteresisPolicy, StoreUnavailable
from monitor.store.limits import ConnectionLimits
from monitor.store.sql import SqlStore, _lock_key
from tests.support.blackhole_proxy import BlackholeProxy, through
from tests.support.check_runs import finding, ok_run
from tests.support.finding_events import record_transitions

pytestmark = [pytest.mark.integration, pytest.mark.hostile_peer, pytest.mark.postgres]

SHORT = ConnectionLimits(
    connect_seconds=2,
    statement_seconds=2,
    lock_seconds=1,
    keepalive_idle_seconds=7,
    keepalive_interval_seconds=3,
    keepalive_count=4,
    tcp_user_timeout_seconds=11,
)
# how long any one store call may take with SHORT: a ping, three connects, one round trip,
# with generous slack for a loaded machine; the point is that it ends at all
ENDS_WITHIN_SECONDS = 60


def test_store_sessions_carry_timeouts_and_keepalives_and_keep_the_urls_own_options(
    postgres_url: str,
) -> None:
    store = SqlStore(postgres_url, SHORT)
    try:
        with store.engine.connect() as connection:
            shown = {
                name: connection.execute(sa.text(f"SHOW {name}")).scalar_one()
                for name in (
                    "statement_timeout",
                    "lock_timeout",
                    "idle_in_transaction_session_timeout",
                    "tcp_keepalives_idle",
                    "tcp_keepalives_interval",
                    "tcp_keepalives_count",
                    "tcp_user_timeout",
                    "search_path",
                )
            }
            client = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    finally:
        store.close()

    assert shown["statement_timeout"] == "2s"
    assert shown["lock_timeout"] == "1s"
    assert shown["idle_in_transaction_session_timeout"] == "5min"
    assert (shown["tcp_keepalives_idle"], shown["tcp_keepalives_interval"]) == ("7", "3")
    assert shown["tcp_keepalives_count"] == "4"
    assert shown["tcp_user_timeout"] == "11000"  # milliseconds
    assert shown["search_path"].startswith("apivigil_test_")  # the URL's own options still apply
    assert client["keepalives"] == "1"
    assert (client["keepalives_idle"], client["keepalives_interval"]) == ("7", "3")
    assert client["keepalives_count"] == "4"
    assert client["tcp_user_timeout"] == "11000"
    assert client["connect_timeout"] == "2"


def test_a_statement_stuck_on_a_half_open_link_gives_up_and_the_store_answers_once_it_is_back(
    postgres_url: str,
) -> None:
    upstream = make_url(postgres_url)
    with BlackholeProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
        store = SqlStore(through(proxy, postgres_url), SHORT)
        try:
            store.ping()
            with store.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
                proxy.blackhole()
                started = time.monotonic()
                with pytest.raises(sa.exc.OperationalError):
                    connection.execute(sa.text("SELECT 2"))  # on a connection already open
                statement_gave_up = time.monotonic() - started
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.ping()  # a pooled connection, then new ones: none answers
            ping_gave_up = time.monotonic() - started

            proxy.forward()
            store.ping()
        finally:
            store.close()

    assert statement_gave_up < ENDS_WITHIN_SECONDS
    assert ping_gave_up < ENDS_WITHIN_SECONDS


def test_a_write_waiting_on_a_lock_held_by_a_stuck_session_gives_up_as_unavailable(
    postgres_url: str,
) -> None:
    store = SqlStore(postgres_url, SHORT)
    store.upgrade_schema()
    holder = sa.create_engine(postgres_url)
    run = ok_run("api", datetime.now(UTC), finding())
    try:
        with holder.connect() as stuck:  # e.g. a session whose client vanished mid-transaction
            key = _lock_key(f"record|{run.check.value}|{run.target}")
            stuck.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            with pytest.raises(StoreUnavailable, match="lock timeout"):
                store.record(run, HysteresisPolicy())
            stuck.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        recorded = record_transitions(store, run, HysteresisPolicy())
        assert [t.rule_id for t in recorded] == ["CERT-EXPIRES-SOON"]
    finally:
        holder.dispose()
        store.close()
