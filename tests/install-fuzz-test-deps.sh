#!/bin/sh
# schemathesis for tests/test_api_fuzz.py, in a venv of its own: its requests transport
# fails under urllib3-future, which niquests installs into the project venv.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$here/.venv-fuzz/bin/st" ] && exit 0
python3 -m venv "$here/.venv-fuzz"
"$here/.venv-fuzz/bin/pip" install --quiet "schemathesis>=4.3,<5"
