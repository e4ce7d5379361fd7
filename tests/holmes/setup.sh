#!/usr/bin/env bash
# Creates (or reuses) a Python venv with holmesgpt==0.45.0 for validate.py.
# Usage: tests/holmes/setup.sh [VENV_DIR]   (default: <repo>/target/holmes-venv)
# Idempotent: a venv already at the pinned version is reused without touching the network.
# Prints the venv's python path on stdout.
set -euo pipefail

HOLMES_VERSION="0.45.0"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${1:-$repo_root/target/holmes-venv}"
py="$venv/bin/python"

installed_version() {
    [ -x "$py" ] || return 1
    "$py" - <<'PY' 2>/dev/null
from importlib.metadata import version
print(version("holmesgpt"))
PY
}

if [ "$(installed_version || true)" = "$HOLMES_VERSION" ]; then
    echo "$py"
    exit 0
fi

mkdir -p "$(dirname "$venv")"
[ -x "$py" ] || python3 -m venv "$venv" >&2
"$py" -m pip install --quiet --disable-pip-version-check "holmesgpt==$HOLMES_VERSION" >&2

got="$(installed_version || true)"
if [ "$got" != "$HOLMES_VERSION" ]; then
    echo "setup.sh: expected holmesgpt $HOLMES_VERSION in $venv, found '${got:-none}'" >&2
    exit 1
fi
echo "$py"
