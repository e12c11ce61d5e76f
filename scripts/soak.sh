#!/usr/bin/env bash
# The soak of issue 3 ("crash-proof under fire"): builds the release preset
# and runs ringmart-chaos long enough for >= 100,000 orders and >= 1,000 kills
# — the Olist sample (6,975 orders) replayed 15 times with fresh users,
# products and idempotency keys, 16 clients, SIGKILL of a random daemon
# (supervisor and gateway included) every 100-300 ms, a SIGSTOP hang every
# 25th fault, a reboot every 60th (more rounds until 1,000 kills if needed),
# 5% declines, 1% payment timeouts and 2% capture failures — after a
# fault-free baseline of the same 15 rounds. Writes
# docs/chaos-results.json and prints the summary; exits non-zero when the
# checker found a violation or the run fell short of the targets.
#
#   scripts/soak.sh [--olist DIR] [--repeat K] [other ringmart-chaos options]
#   RINGMART_BUILD_DIR=build/other scripts/soak.sh   # build there (Release) instead of build/release
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
olist="$root/../shared/data/olist"
repeat=15
args=()
while (($#)); do
  case "$1" in
    --olist) olist="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ -d "$olist" ]] || { echo "soak: no Olist data at $olist (--olist DIR)" >&2; exit 2; }

build="${RINGMART_BUILD_DIR:-build/release}"
if [[ "$build" == build/release ]]; then
  cmake --preset release >/dev/null
else
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j2 --target ringmart-chaos

results="$root/docs/chaos-results.json"
echo "== soak: Olist x $repeat, results in $results"
set +e
"$root/$build/bin/ringmart-chaos" --olist "$olist" --repeat "$repeat" --concurrency 16 \
  --kill-interval-ms 100:300 --kinds kill,stop,reboot --stop-every 25 --reboot-every 60 \
  --decline-percent 5 --timeout-percent 1 --capture-fail-percent 2 \
  --min-kills 1000 --fault-free-baseline --results "$results" "${args[@]}"
rc=$?
set -e
[[ -f "$results" ]] || exit "$rc"
# The targets of the issue, from the results file.
python3 - "$results" <<'PY' || rc=${rc/#0/1}
import json, sys
r = json.load(open(sys.argv[1]))
kills = r["faults"]["by_kind"].get("kill", 0)
short = []
if r["orders_replayed"] < 100_000: short.append(f"orders {r['orders_replayed']} < 100000")
if kills < 1000: short.append(f"kills {kills} < 1000")
if r.get("violations") != 0: short.append(f"violations {r.get('violations')}")
p99 = r["restart_ms"]["daemon_kill"].get("p99")
print(f"soak: {r['orders_replayed']} orders, {kills} kills, violations {r.get('violations')}, "
      f"daemon restart p99 {p99} ms (target 100)")
if short:
    print("soak: short of the targets: " + ", ".join(short))
    sys.exit(1)
PY
exit "$rc"
