#!/usr/bin/env bash
# The whole test suite under ThreadSanitizer: builds the `tsan` preset (every
# binary, the daemons the integration tests start included) and runs
# `ctest --preset tsan`. Each process writes its reports to
# build/tsan/reports/tsan.<pid>; scripts/tsan.supp drops those inside the
# uninstrumented liblmdb. Exits non-zero when a test failed or any process
# reported a race, and prints the first report of each file.
#
#   scripts/tsan.sh [ctest arguments, e.g. -R Saga]
# Takes ~10 min to build and ~5 min to run on 2 cores; not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset tsan >/dev/null
cmake --build --preset tsan
rm -rf build/tsan/reports
mkdir -p build/tsan/reports
status=0
ctest --preset tsan "$@" || status=$?
shopt -s nullglob
reports=(build/tsan/reports/tsan.*)
if ((${#reports[@]})); then
  echo "tsan: ${#reports[@]} process(es) reported races:" >&2
  for r in "${reports[@]}"; do
    echo "== $r" >&2
    sed -n '/WARNING: ThreadSanitizer/,/^SUMMARY/p' "$r" | head -40 >&2
  done
  exit 1
fi
echo "tsan: no reports"
exit "$status"
