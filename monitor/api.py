"""HTTP: /metrics, /healthz (scheduler alive) and /readyz (store reachable, schema current)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from monitor.store.interface import SchemaState, Store, StoreError


@dataclass(frozen=True, slots=True)
class Probes:
    scheduler_alive: Callable[[], bool]
    store: Callable[[], Store]


def create_app(registry: CollectorRegistry, probes: Probes) -> FastAPI:
    app = FastAPI(title="apivigil", docs_url=None, redoc_url=None)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        alive = probes.scheduler_alive()
        return JSONResponse(
            {"scheduler": "alive" if alive else "stopped"}, status_code=200 if alive else 503
        )

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        try:
            store = probes.store()
            store.ping()
            state = store.schema_state()
        except StoreError as error:
            return JSONResponse({"store": "unavailable", "error": str(error)}, status_code=503)
        ready = state is SchemaState.CURRENT
        return JSONResponse(
            {"store": "ok", "schema": state.value}, status_code=200 if ready else 503
        )

    @app.middleware("http")
    async def security_headers(request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    return app


class ApiServer:
    """Uvicorn in a background thread; `stop()` asks it to finish."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
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
