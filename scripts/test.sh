#!/usr/bin/env bash
# Installs dependencies, builds the release preset and runs every test suite
# (unit, multi-process, integration against the real system, Olist replay).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release
cmake --build --preset release
ctest --preset release "$@"
