#!/usr/bin/env bash
# Install what the alert-receiver tests need on Debian, when it is missing (idempotent):
#   - prometheus-alertmanager: the real Alertmanager (the package starts nothing; the tests
#     run their own instance on 127.0.0.1)
#   - aiosmtpd in the project's virtualenv: the SMTP server of the e-mail tests
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$here/../.venv/bin/python"

missing=()
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)

if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when they are absent or cannot resolve a package.
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi
/usr/bin/prometheus-alertmanager --version >/dev/null 2>&1

if ! "$python" -c 'import aiosmtpd' >/dev/null 2>&1; then
    "$python" -m pip install -q --disable-pip-version-check 'aiosmtpd>=1.4.6'
fi
