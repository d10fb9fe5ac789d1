"""The tier plugin (tests/support/tiers.py): collection fails on a test without exactly one tier,
and a unit test that reaches for a socket or a process fails with a message saying so.

Each case runs pytest in this process on a small test file (pytester); the file's own sockets
are the point, so these tests are integration."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

INI = """
[pytest]
addopts = -p tests.support.tiers
markers =
    unit: u
    integration: i
    e2e: e
    postgres: p
"""


@pytest.fixture
def tiered(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    return pytester


def test_a_test_without_a_tier_fails_collection_naming_it(tiered: pytest.Pytester) -> None:
    tiered.makepyfile(
        test_mixed="""
        import pytest

        @pytest.mark.unit
        def test_marked():
            pass

        def test_forgotten():
            pass
        """
    )
    result = tiered.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*1 test(s) without exactly one tier marker:*",
            "*test_mixed.py::test_forgotten has no tier marker*",
            "*pytestmark = pytest.mark.unit*",
        ]
    )
    assert "test_marked" not in result.stderr.str()


def test_two_tiers_on_one_test_fail_collection(tiered: pytest.Pytester) -> None:
    tiered.makepyfile(
        test_double="""
        import pytest

        pytestmark = pytest.mark.unit

        @pytest.mark.e2e
        def test_both():
            pass
        """
    )
    result = tiered.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_both has 2 tier markers (e2e, unit); it needs exactly one*"]
    )


def test_a_unit_test_on_postgresql_fails_collection(tiered: pytest.Pytester) -> None:
    tiered.makepyfile(
        test_pg="""
        import pytest

        @pytest.mark.unit
        @pytest.mark.postgres
        def test_store():
            pass
        """
    )
    result = tiered.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_store is marked unit but uses PostgreSQL*"])


def test_a_unit_test_that_connects_fails_and_an_integration_test_may(
    tiered: pytest.Pytester,
) -> None:
    tiered.makepyfile(
        test_sockets="""
        import socket
        import pytest

        def listen():
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen()
            return server

        @pytest.mark.integration
        def test_integration_listens():
            listen().close()

        @pytest.mark.unit
        def test_unit_listens():
            listen().close()

        @pytest.mark.unit
        def test_unit_socketpair_is_fine():
            a, b = socket.socketpair()
            a.close(); b.close()
        """
    )
    result = tiered.runpytest("-rf")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_unit_listens*called socket.bind(('127.0.0.1', 0))*unit tests*"
            "open no sockets and start no processes; mark it integration*"
        ]
    )


def test_a_unit_test_that_swallows_the_refusal_still_fails(tiered: pytest.Pytester) -> None:
    tiered.makepyfile(
        test_swallow="""
        import contextlib
        import subprocess
        import pytest

        @pytest.mark.unit
        def test_hides_it():
            with contextlib.suppress(Exception):
                subprocess.run(["true"], check=False)
        """
    )
    result = tiered.runpytest("-rf")
    result.assert_outcomes(failed=1)
    assert "test_hides_it started a subprocess (['true'])" in result.stdout.str()


def test_a_module_fixture_a_unit_test_sets_up_is_held_to_the_unit_rules(
    tiered: pytest.Pytester,
) -> None:
    tiered.makepyfile(
        test_fixture="""
        import socket
        import pytest

        @pytest.fixture(scope="module")
        def server():
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            yield listener
            listener.close()

        @pytest.mark.unit
        def test_uses_a_server(server):
            pass
        """
    )
    result = tiered.runpytest("-rE")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_uses_a_server called socket.bind*"])
