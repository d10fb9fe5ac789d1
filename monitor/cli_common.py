"""What the `apivigil` sub-commands share: consoles, the config option, loading, the store.

The settings and the store are imported by the functions that need them: registering the
commands (all of them, at every start) must stay cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.display import HumanConsole
from monitor.scan import EXIT_USAGE

if TYPE_CHECKING:
    from monitor.settings import Settings
    from monitor.store.sql import SqlStore

out = HumanConsole(soft_wrap=True)
err = HumanConsole(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config [default: $APIVIGIL_CONFIG, else ./apivigil.yaml]"
    ),
]


def config_path(explicit: Path | None) -> Path | None:
    from monitor.settings import DEFAULT_CONFIG_PATH

    if explicit is not None:
        return explicit
    from_env = os.environ.get("APIVIGIL_CONFIG")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load(explicit: Path | None, required: bool = False) -> tuple[Settings, Path | None]:
    from monitor.settings import ConfigError, load_settings

    path = config_path(explicit)
    if path is None and required:
        err.print("[red]no config file:[/] pass --config FILE or create ./apivigil.yaml")
        raise typer.Exit(EXIT_USAGE)
    try:
        return load_settings(path), path
    except ConfigError as error:
        err.print(str(error), markup=False, highlight=False)
        raise typer.Exit(EXIT_USAGE) from None


def open_store(settings: Settings, store_url: str | None) -> SqlStore:
    from monitor.store.interface import SchemaState, StoreError
    from monitor.store.sql import SqlStore

    try:
        store = SqlStore(store_url or settings.store, settings.store_timeouts.limits())
        state = store.schema_state()
    except StoreError as error:
        err.print(f"[red]store:[/] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    if state is not SchemaState.CURRENT:
        err.print(
            f"[red]store {store.describe()} schema is {state.value}[/]: run `apivigil db upgrade`"
        )
        raise typer.Exit(EXIT_USAGE)
    return store


StoreOption = Annotated[
    str | None, typer.Option("--store", help="store URL [default: from the config]")
]


@contextmanager
def opened_store(config: Path | None, store_url: str | None) -> Iterator[SqlStore]:
    """The store of the config (or `store_url`), schema checked, closed afterwards."""
    settings, _ = load(config)
    sql_store = open_store(settings, store_url)
    try:
        yield sql_store
    finally:
        sql_store.close()
