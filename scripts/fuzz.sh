#!/usr/bin/env bash
# The libFuzzer campaign of issue 14: builds the `fuzz` preset (clang 19,
# ASan + UBSan, tests/fuzz) and runs each target for SECONDS (default 30) on a
# working copy of its seed corpus (tests/fuzz/corpus/<target>: inputs taken
# from the tests, plus every input that once crashed a target), then prints
# executions, coverage and the outcome per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Exits non-zero when a target crashes, leaks, trips a sanitizer or times out;
# the input is kept as build/fuzz/artifacts/<target>-crash-*, and the line to
# reproduce it is printed. The working corpus (build/fuzz/corpus/<target>)
# grows from run to run; seeds are never changed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(fuzz_http_request fuzz_json_requests fuzz_ring_records fuzz_envelope)

scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

root=$(pwd)
mkdir -p build/fuzz/artifacts build/fuzz/logs
failed=0
printf '%-20s %12s %8s %8s %s\n' TARGET EXECUTIONS COV FT RESULT
for t in "${targets[@]}"; do
  work=build/fuzz/corpus/$t
  mkdir -p "$work"
  log=build/fuzz/logs/$t.log
  set +e
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "build/fuzz/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$t-" \
    "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  if ((rc == 0)); then
    result=ok
  else
    result="FAILED (exit $rc): $(grep -m1 -E 'ERROR|SUMMARY|Test unit written' "$log" || true)"
    failed=1
  fi
  printf '%-20s %12s %8s %8s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$result"
  if ((rc != 0)); then
    artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    echo "  log: $root/$log"
    [[ -n $artifact ]] && echo "  reproduce: build/fuzz/bin/$t $artifact   (then add it to tests/fuzz/corpus/$t)"
  fi
done
exit $failed
