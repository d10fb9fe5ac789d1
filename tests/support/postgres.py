"""The PostgreSQL server the suite uses (127.0.0.1:5432, trust auth; .ci/run starts it)."""

from __future__ import annotations

import os

POSTGRES_ADMIN_URL = os.environ.get(
    "APIVIGIL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
