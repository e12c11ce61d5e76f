#!/usr/bin/env bash
# Installs dependencies, builds the release preset and runs every test suite
# (unit, multi-process, integration against the real system, Olist replay,
# attacks by another local user, the Debian package unpacked and replayed),
# then every libFuzzer target for
# RINGMART_FUZZ_SECONDS (30) on its seed corpus (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release
cmake --build --preset release
ctest --preset release "$@"
scripts/fuzz.sh "${RINGMART_FUZZ_SECONDS:-30}"
