"""Alembic wiring: upgrade to head and compare the database's revision with this code's."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from monitor.store.interface import SchemaState

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, "the migrations directory has no head revision"
    return head


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return SchemaState.EMPTY
    if current == head_revision():
        return SchemaState.CURRENT
    known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    return SchemaState.OUTDATED if current in known else SchemaState.NEWER


# pg_advisory_lock key: instances started together migrate one after the other
_MIGRATION_LOCK = 0x61706976_6D696772  # "apiv" "migr"


def upgrade(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "head")
        return
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        try:
            command.upgrade(alembic_config(engine), "head")
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
