#!/usr/bin/env bash
# Install what the dashboard tests need on Debian, when it is missing (idempotent):
#   - prometheus: the real Prometheus the end-to-end test runs every panel query against,
#     and promtool (check config / check rules / test rules); the package starts nothing
#   - prometheus-pushgateway: the gateway `apivigil scan --push-gateway` pushes to
#   - nginx and the weak-TLS helpers: tests/install-tls-test-deps.sh (the TLS posture target)
#   - grafana-foundation-sdk, pinned exactly as in pyproject.toml (a bare install picks the
#     Grafana 10 build), in the project's virtualenv
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$here/../.venv/bin/python"
sdk='grafana-foundation-sdk==1769699379!11.6.0'

missing=()
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || missing+=(prometheus)
[ -x /usr/bin/prometheus-pushgateway ] || missing+=(prometheus-pushgateway)

if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when they are absent or cannot resolve a package.
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi
/usr/bin/prometheus --version >/dev/null 2>&1
/usr/bin/promtool --version >/dev/null 2>&1

bash "$here/install-tls-test-deps.sh"

if ! "$python" -m pip show grafana-foundation-sdk 2>/dev/null | grep -qx 'Version: 1769699379!11.6.0'; then
    "$python" -m pip install -q --disable-pip-version-check "$sdk"
fi
