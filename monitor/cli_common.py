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
    from monitor.settings import ConfigProblem, Settings
    from monitor.store.interface import Store

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
    settings, path, _warnings = load_with_warnings(explicit, required)
    return settings, path


def load_with_warnings(
    explicit: Path | None, required: bool = False
) -> tuple[Settings, Path | None, list[ConfigProblem]]:
    """`load`, and the config's warnings (keys accepted but ignored)."""
    from monitor.settings import ConfigError, read_settings

    path = config_path(explicit)
    if path is None and required:
        err.print("[red]no config file:[/] pass --config FILE or create ./apivigil.yaml")
        raise typer.Exit(EXIT_USAGE)
    try:
        settings, warnings = read_settings(path)
    except ConfigError as error:
        err.print(str(error), markup=False, highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    return settings, path, warnings


def sqlite_file(url: str) -> Path | None:
    """The file a `sqlite:` store URL names (None: another database, or in memory)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _refuse_a_missing_store(url: str, from_option: bool, config_file: Path | None) -> None:
    """Exit (usage) when `url` is a SQLite file that does not exist: opening it would create it."""
    path = sqlite_file(url)
    if path is None or path.exists():
        return
    if from_option or config_file is not None:
        source = "--store" if from_option else f"the store of {config_file}"
        err.print(
            f"no store found: {path} ({source}) does not exist. Point at another with --store "
            "URL, or create it with `apivigil db upgrade`.",
            markup=False,
        )
    else:
        err.print(
            f"no store found: no config file was found, and the default store {path} does not "
            "exist here. Point at yours with --config FILE, $APIVIGIL_CONFIG or --store URL.",
            markup=False,
        )
    raise typer.Exit(EXIT_USAGE)


def open_cli_store(
    settings: Settings, store_url: str | None, config_file: Path | None = None
) -> Store:
    """The store, schema checked; a SQLite file that does not exist is never created here."""
    from monitor.store.interface import SchemaState, StoreError
    from monitor.store.sql import SqlStore

    url = store_url or settings.store
    _refuse_a_missing_store(url, store_url is not None, config_file)
    try:
        store = SqlStore(url, settings.store_timeouts.limits())
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
def opened_store(config: Path | None, store_url: str | None) -> Iterator[Store]:
    """The store of the config (or `store_url`), schema checked, closed afterwards."""
    settings, config_file = load(config)
    sql_store = open_cli_store(settings, store_url, config_file)
    try:
        yield sql_store
    finally:
        sql_store.close()


@contextmanager
def store_session(
    settings: Settings, store_url: str | None, config_file: Path | None = None
) -> Iterator[Store]:
    """The store (`open_cli_store`), closed afterwards; a StoreError inside ends the command
    with `store: <why>` and the usage exit code."""
    from monitor.store.interface import StoreError

    sql_store = open_cli_store(settings, store_url, config_file)
    try:
        yield sql_store
    except StoreError as error:
        err.print(f"[red]store:[/] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        sql_store.close()
