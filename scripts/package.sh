#!/usr/bin/env bash
# Builds the Debian package: installs the build dependencies, builds the
# release preset and packs it (packaging/make-deb.sh: CPack, then lintian) into
# build/release/ringmart_<version>_<arch>.deb. Install it with
#   sudo apt install ./build/release/ringmart_<version>_<arch>.deb
# (README.md, "Install on Debian 12").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
packaging/make-deb.sh build/release build/release
