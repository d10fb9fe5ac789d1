"""HTTP: /metrics (rendered in the background when slow), /healthz (this process is not
stuck: scheduler alive, nothing stalled) and /readyz (store reachable, schema current and,
when clustered, the instance's role)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

import uvicorn
from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from monitor.api_security import BodySizeLimit, SecurityHeadersAndErrors, log, unprocessable
from monitor.store.interface import SchemaState, Store, StoreError


def _nothing_stalled() -> list[str]:
    return []


@dataclass(frozen=True, slots=True)
class Probes:
    scheduler_alive: Callable[[], bool]
    store: Callable[[], Store]
    # clustered instances report their role: leader | follower | worker
    role: Callable[[], str] | None = None
    # short reasons why this process is stuck (recorder, scheduler); empty when it is not
    stalls: Callable[[], list[str]] = _nothing_stalled


class MetricsPage:
    """The /metrics body, read from the store at scrape time while that is quick.

    When one rendering takes longer than `slow_seconds` (thousands of targets), a scrape
    gets the latest rendering at once while a background thread keeps it at most
    `refresh_seconds` old for as long as scrapes keep coming; a rendering older than
    `max_age_seconds` is never served.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        slow_seconds: float = 0.25,
        refresh_seconds: float = 10.0,
        max_age_seconds: float = 60.0,
    ) -> None:
        self._registry = registry
        self._slow_seconds = slow_seconds
        self._refresh_seconds = refresh_seconds
        self._max_age_seconds = max_age_seconds
        self._lock = threading.Lock()
        self._rendering = threading.Lock()
        self._body: bytes | None = None
        self._rendered_at = 0.0
        self._slow = False
        self._last_scrape = 0.0
        self._refresher: threading.Thread | None = None

    def body(self) -> tuple[bytes, float]:
        """The exposition and its age in seconds."""
        now = time.monotonic()
        with self._lock:
            self._last_scrape = now
            body, rendered_at, slow = self._body, self._rendered_at, self._slow
        if body is None or not slow or now - rendered_at > self._max_age_seconds:
            return self._render(), 0.0
        self._keep_fresh()
        return body, now - rendered_at

    def _render(self) -> bytes:
        with self._rendering:
            started = time.monotonic()
            body = generate_latest(self._registry)
            took = time.monotonic() - started
            with self._lock:
                self._body, self._rendered_at = body, started
                self._slow = took > self._slow_seconds
            return body

    def _keep_fresh(self) -> None:
        with self._lock:
            if self._refresher is not None and self._refresher.is_alive():
                return
            self._refresher = threading.Thread(
                target=self._refresh, name="apivigil-metrics", daemon=True
            )
            self._refresher.start()

    def _refresh(self) -> None:
        idle_after = self._max_age_seconds * 2
        while True:
            with self._lock:
                age = time.monotonic() - self._rendered_at
                if not self._slow or time.monotonic() - self._last_scrape > idle_after:
                    return
            if age >= self._refresh_seconds:
                self._render()
            else:
                time.sleep(self._refresh_seconds - age)


OPENAPI_PATH = "/api/v1/openapi.json"


def create_app(
    registry: CollectorRegistry,
    probes: Probes,
    max_body_bytes: int = 64 * 1024,
    hsts: bool = False,
) -> FastAPI:
    """The app; its OpenAPI document (public) describes /api/v1 and the probes."""
    app = FastAPI(
        title="apivigil",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH,
        # Starlette's slash redirects are absolute URLs built from the Host header
        redirect_slashes=False,
    )
    app.add_exception_handler(RequestValidationError, unprocessable)
    page = MetricsPage(registry)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body, age = page.body()
        return Response(
            body,
            media_type=CONTENT_TYPE_LATEST,
            headers={"X-Apivigil-Metrics-Age": f"{age:.1f}"},
        )

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Liveness: 503 when this process is stuck, i.e. its scheduler loop stopped, checks
        are far overdue, or a store write has hung past its bound. A store that is simply
        down is not a stall: runs are held and retried, and /readyz answers 503 for it;
        restarting the process would only lose the held runs."""
        alive = probes.scheduler_alive()
        body: dict[str, object] = {"scheduler": "alive" if alive else "stopped"}
        stalled = probes.stalls()
        if stalled:
            body["stalled"] = stalled
        return JSONResponse(body, status_code=200 if alive and not stalled else 503)

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        try:
            store = probes.store()
            store.ping()
            state = store.schema_state()
        except StoreError as error:
            # hosts, users and driver errors are for the log, not for anonymous callers
            log.warning("readyz: the store is unavailable", error=str(error))
            return JSONResponse({"store": "unavailable", **role()}, status_code=503)
        ready = state is SchemaState.CURRENT
        return JSONResponse(
            {"store": "ok", "schema": state.value, **role()}, status_code=200 if ready else 503
        )

    def role() -> dict[str, str]:
        return {} if probes.role is None else {"role": str(probes.role())}

    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(SecurityHeadersAndErrors, hsts=hsts)  # outermost
    return app


class ApiServer:
    """Uvicorn in a background thread; `stop()` asks it to finish.

    X-Forwarded-For/-Proto are believed only from peers in `trusted_proxies` (none by default):
    the client address keys the rate limit of failed authentication."""

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        trusted_proxies: Sequence[IPv4Network | IPv6Network] = (),
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=[str(network) for network in trusted_proxies],
        )
        if tls is not None:
            config.load()
            config.ssl = tls  # our context, not one uvicorn builds from file names
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        waited = 0.0
        while not self._server.started and self._thread.is_alive() and waited < timeout:
            threading.Event().wait(0.05)
            waited += 0.05
        if not self._server.started:
            raise OSError("the HTTP server did not start (is the listen address in use?)")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
