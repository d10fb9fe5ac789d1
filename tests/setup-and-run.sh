#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run all of it:
# lint, format check, type check and pytest (real TLS servers, SQLite, PostgreSQL, Redis).
# Arguments go to pytest: `-m unit` for the fast tier, `-m "unit or integration"`, none for all.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# Debian packages the tests use.
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v unshare >/dev/null || missing+=(util-linux)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# PostgreSQL on 127.0.0.1:5432 (the store contract suite runs against it).
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    log "starting PostgreSQL"
    for version in /etc/postgresql/*; do
        pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
    for _ in $(seq 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
    pg_isready -h 127.0.0.1 -p 5432
fi
if ! psql -h 127.0.0.1 -U postgres -d test -Atqc 'select 1' >/dev/null 2>&1; then
    su postgres -c "createdb test" 2>/dev/null || true
fi
# Redis on 127.0.0.1:6379: the cluster tests' broker and per-host limit (test_cluster_*.py).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 60); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.25; done
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis did not start" >&2; exit 1; }
fi

log "python environment"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

log "test servers: weak TLS (nginx, openssl, tlslite-ng), Alertmanager, SMTP; the Observatory scanner"
bash tests/install-tls-test-deps.sh
bash tests/install-alert-test-deps.sh
bash tests/install-dashboard-test-deps.sh
bash tests/install-deploy-test-deps.sh
bash tests/install-report-test-deps.sh
bash tests/install-fuzz-test-deps.sh
bash tests/install-sbom-test-deps.sh
bash tests/install-drift-test-deps.sh
bash tests/install-posture-test-deps.sh

log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
log "mypy"
.venv/bin/mypy
log "import contracts (layering, see pyproject.toml [tool.importlinter])"
.venv/bin/lint-imports --no-cache
log "pytest"
status=0
.venv/bin/pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
