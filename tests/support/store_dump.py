"""Everything a store holds, as one text to search (secrets must never be in it)."""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

import sqlalchemy as sa


def store_text(store_url: str, database: Path) -> str:
    """Everything in the store as text: raw SQLite files and every row, blobs decompressed."""
    parts = [path.read_bytes().decode("latin-1") for path in database.parent.glob("*.db*")]
    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        metadata = sa.MetaData()
        metadata.reflect(connection)
        for table in metadata.tables.values():
            for row in connection.execute(table.select()):
                for value in row:
                    if isinstance(value, bytes):
                        content = value
                        with contextlib.suppress(zlib.error):
                            content = zlib.decompress(value)
                        parts.append(content.decode("latin-1"))
                    else:
                        parts.append(str(value))
    engine.dispose()
    return "\n".join(parts)
