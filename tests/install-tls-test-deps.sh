#!/usr/bin/env bash
# Install what the weak-TLS test servers in tests/support/tls_servers.py need (idempotent, quiet):
#   - Debian nginx (the packaged service is stopped again: the tests start their own nginx)
#   - the openssl command-line tool (s_server, dhparam, ocsp)
#   - tlslite-ng in the project's virtualenv (RC4, 3DES, SSLv3 and DH-512 servers)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$here/../.venv/bin/python"

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    missing+=(nginx)
fi

if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when they are absent or cannot resolve a package.
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

# The Debian package may start its own nginx on port 80: stop it, the tests run their own.
for pidfile in /run/nginx.pid /var/run/nginx.pid; do
    [ -s "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ]; then
        service nginx stop >/dev/null 2>&1 || true
        if kill -0 "$pid" 2>/dev/null; then
            kill -QUIT "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
done

if ! "$python" -c 'import tlslite' >/dev/null 2>&1; then
    "$python" -m pip install -q --disable-pip-version-check tlslite-ng
fi
