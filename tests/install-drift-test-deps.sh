#!/usr/bin/env bash
# Real configuration files for tests/test_config_drift_real.py: Debian packages fetched
# with `apt-get download` (not installed) into tests/.drift-debs/, a git-ignored cache.
# Idempotent: a package already cached is not fetched again. Fails when one cannot be had.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="$here/.drift-debs"
packages=(nginx-common apache2 openssh-server openssh-client php8.2-common postgresql-common postgresql-15
    redis-server haproxy prometheus cloud-init logrotate ufw)
mkdir -p "$cache"
cd "$cache"
missing=()
for package in "${packages[@]}"; do
    compgen -G "${package}_*.deb" >/dev/null || missing+=("$package")
done
((${#missing[@]})) || exit 0
if ! apt-get download -qq "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get download -qq "${missing[@]}" >/dev/null
fi
for package in "${missing[@]}"; do
    compgen -G "${package}_*.deb" >/dev/null || { echo "could not download $package" >&2; exit 1; }
done
