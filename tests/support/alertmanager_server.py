"""The real Alertmanager (Debian `prometheus-alertmanager`) on 127.0.0.1, with a webhook sink.

    with WebhookSink() as sink, AlertmanagerServer(sink.url) as alertmanager:
        ...  # POST to alertmanager.url + "/api/v2/alerts"; sink.wait_for(...) -> payload

Alertmanager routes every alert to one webhook receiver (the sink) with `send_resolved`,
grouped by all labels (`...`: one group per alert), `group_wait` 0s and a short
`group_interval`, so a firing alert reaches the sink at once and its resolution within about
a second. Clustering is off (`--cluster.listen-address=`). tests/install-alert-test-deps.sh
installs the binary.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import HOST, free_port
from tests.support.tls_servers import (
    ManagedDir,
    ManagedServer,
    stop_process,
    tail,
    track_server,
    untrack_server,
)
from tests.support.waiting import wait_for_200

BINARY = Path("/usr/bin/prometheus-alertmanager")
INSTALLER = "tests/install-alert-test-deps.sh"

WebhookPayload = dict[str, Any]


class WebhookSink:
    """An HTTP server on 127.0.0.1 that records every JSON body POSTed to /hook."""

    def __init__(self) -> None:
        self.payloads: list[WebhookPayload] = []
        self._changed = threading.Condition()
        self._http = ScriptedHttpServer()
        self._http.post_handlers["/hook"] = self._receive

    @property
    def url(self) -> str:
        return f"{self._http.url}/hook"

    def _receive(self, body: bytes) -> Reply:
        with self._changed:
            self.payloads.append(json.loads(body))
            self._changed.notify_all()
        return Reply(200)

    def wait_for(
        self, condition: Callable[[WebhookPayload], bool], timeout: float = 10.0
    ) -> WebhookPayload:
        """The first payload, received so far or within `timeout` s, for which `condition`
        holds. Raises TimeoutError naming what did arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = next((p for p in self.payloads if condition(p)), None)
                if match is not None:
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no matching webhook payload in {timeout} s: {self.payloads}"
                    )
                self._changed.wait(remaining)

    def __enter__(self) -> Self:
        self._http.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._http.__exit__(kind, error, trace)


class AlertmanagerServer(ManagedServer):
    """`prometheus-alertmanager` on 127.0.0.1:`port`, sending every group to `webhook_url`."""

    def __init__(
        self,
        webhook_url: str,
        *,
        group_interval: str = "1s",
        directory: Path | None = None,
        ready_timeout: float = 15.0,
    ) -> None:
        if not BINARY.exists():
            raise FileNotFoundError(f"{BINARY} is missing: run {INSTALLER} (as root)")
        self.webhook_url = webhook_url
        self.group_interval = group_interval
        self.port = free_port()
        self.ready_timeout = ready_timeout
        self._directory = directory
        self._workdir: ManagedDir | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def config(self) -> str:
        # JSON is YAML: no YAML writer needed, and every string is quoted.
        document = {
            "route": {
                "receiver": "sink",
                "group_by": ["..."],
                "group_wait": "0s",
                "group_interval": self.group_interval,
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "sink",
                    "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}],
                }
            ],
        }
        return json.dumps(document, indent=2)

    def start(self) -> Self:
        self._workdir = ManagedDir(self._directory, "apivigil-alertmanager-")
        workdir = self._workdir.path
        config = workdir / "alertmanager.yml"
        config.write_text(self.config())
        log = workdir / "alertmanager.log"
        with log.open("wb") as output:
            self._process = subprocess.Popen(
                [
                    str(BINARY),
                    f"--config.file={config}",
                    f"--storage.path={workdir / 'data'}",
                    f"--web.listen-address={HOST}:{self.port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        track_server(self)
        try:
            self._wait_ready(log)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, log: Path) -> None:
        assert self._process is not None
        wait_for_200(
            f"{self.url}/-/ready",
            self._process,
            lambda: tail(log),
            self.ready_timeout,
            interval=0.05,
        )

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        untrack_server(self)
        if self._workdir is not None:
            self._workdir.close()
            self._workdir = None
