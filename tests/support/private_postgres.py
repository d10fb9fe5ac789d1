"""A PostgreSQL server of the test's own (initdb into a temporary directory, a free port on
127.0.0.1, trust auth) that the test may stop and start: a real outage without touching the
shared server the rest of the suite uses."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.support.ports import free_port


def _postgres_bin() -> Path:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries: install Debian's postgresql")
    return Path(found[-1]).parent


class PrivatePostgres:
    def __init__(self) -> None:
        self._bin = _postgres_bin()
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="apivigil-pg-"))
        self._data = self._root / "data"
        self._log = self._root / "server.log"
        # the server refuses to run as root: as root, run it as the postgres user
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self._root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as, str(self._bin / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self._root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self._log), "-o", options, "start")

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected, as in a real outage."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "stop")

    def __enter__(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self._root, ignore_errors=True)
