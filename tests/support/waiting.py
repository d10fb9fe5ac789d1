"""Waiting for a server process a test started to answer over HTTP."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx


def wait_for_200(
    url: str,
    process: subprocess.Popen[Any],
    log: Callable[[], str],
    timeout: float,
    *,
    verify: bool | ssl.SSLContext = True,
    interval: float = 0.1,
) -> None:
    """Return once GET `url` answers 200. Raises AssertionError, with the last answer and
    `log()`, when `process` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0, verify=verify, trust_env=False) as client:
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"{url}: the process exited with {process.returncode}:\n{log()}"
                )
            try:
                response = client.get(url)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                last = str(error) or type(error).__name__
            if time.monotonic() >= deadline:
                raise AssertionError(f"{url} not 200 within {timeout:g} s ({last}):\n{log()}")
            time.sleep(interval)
