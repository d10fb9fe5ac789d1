#!/usr/bin/env bash
# The MDN HTTP Observatory scanner (npm @mdn/mdn-http-observatory), the peer of
# benchmarks/http_posture/ and the oracle of tests/test_http_posture_observatory.py, into
# tests/.posture-peer/ (git-ignored). Its install script downloads certificate and
# HSTS-preload lists from the internet, so it is skipped and both lists are written empty
# (loopback targets are in neither). Idempotent; fails when the scanner cannot be had.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peer="$here/.posture-peer"
version="1.4.8"  # scoring algorithm version 4 (see checks/http_posture/observatory.py)
package="$peer/node_modules/@mdn/mdn-http-observatory"
scanner="$peer/node_modules/.bin/mdn-http-observatory-scan"
if [ -x "$scanner" ] && grep -q "\"version\": \"$version\"" "$package/package.json" 2>/dev/null; then
    exit 0
fi
command -v npm >/dev/null || {
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
}
mkdir -p "$peer"
cd "$peer"
[ -f package.json ] || echo '{"private": true}' >package.json
NO_UPDATE_NOTIFIER=1 npm install --silent --no-audit --no-fund --ignore-scripts \
    "@mdn/mdn-http-observatory@$version" >/dev/null
mkdir -p "$package/conf"
[ -s "$package/conf/hsts-preload.json" ] || echo '{}' >"$package/conf/hsts-preload.json"
[ -s "$package/conf/tld-list.json" ] || echo '[]' >"$package/conf/tld-list.json"
[ -x "$scanner" ] || { echo "the Observatory scanner did not install: $scanner" >&2; exit 1; }
