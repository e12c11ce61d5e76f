#!/usr/bin/env bash
# The cost of an online backup (issue 15): fills a system with ORDERS
# generated orders (default 500,000), then replays 60,000 more twice — once
# undisturbed, once with `ringmartctl backup` taken while they run — and
# prints the backup's size, duration and commit pause, and orders/s of both
# replays. Release build; state in a temporary directory on /var/tmp.
#   scripts/backup-bench.sh [ORDERS]
set -euo pipefail
cd "$(dirname "$0")/.."
orders=${1:-500000}
bin=build/release/bin
cmake --build --preset release >/dev/null
work=$(mktemp -d /var/tmp/ringmart-backup-bench.XXXXXX)
mkdir -m 0700 "$work/state"
mkdir -m 0755 "$work/run"
cat >"$work/ringmart.toml" <<TOML
[runtime]
log_level = "warn"
map_size_bytes = 4294967296
[gateway]
customer_auth = "trusted"
TOML
"$bin/ringmart-supervisor" --state-dir "$work/state" --runtime-dir "$work/run" \
  --config "$work/ringmart.toml" >"$work/supervisor.log" 2>&1 &
sup=$!
trap 'kill -TERM $sup 2>/dev/null; wait $sup 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 300); do
  curl -sf --unix-socket "$work/run/api.sock" http://localhost/v1/health >/dev/null 2>&1 && break
  sleep 0.1
done
replay() {  # replay KEY_PREFIX ORDERS SEED
  "$bin/ringmart-replay" --generate "$2" --seed "$3" --key-prefix "$1" --runtime-dir "$work/run" \
    --concurrency 64 2>/dev/null | sed -n 's/^wall time \([0-9.]*\) s, \([0-9.]*\) orders\/s$/\2/p'
}
echo "filling: $orders orders"
start=$(date +%s)
fill=$(replay fill "$orders" 1)
echo "filled in $(($(date +%s) - start)) s at $fill orders/s; state $(du -sh "$work/state" | cut -f1)"
echo "baseline replay (60,000 orders, no backup): $(replay base 60000 2) orders/s"
( sleep 2; "$bin/ringmartctl" --runtime-dir "$work/run" --state-dir "$work/state" \
    backup --config "$work/ringmart.toml" "$work/backup" >"$work/backup.log" 2>&1 ) &
backup=$!
during=$(replay during 60000 3)
wait "$backup"
echo "replay with a backup during it (60,000 orders): $during orders/s"
cat "$work/backup.log"
