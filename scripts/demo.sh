#!/usr/bin/env bash
# The main job: builds ringmart, starts the whole system (supervisor + every
# daemon) in a temporary directory, replays real Olist orders through the
# storefront socket (../shared/data/olist when present, or --olist DIR; a
# built-in generated data set otherwise), prints the summary and
# `ringmartctl status`, and stops everything cleanly.
#
#   scripts/demo.sh [--olist DIR | --generate N] [--concurrency N] [other ringmart-replay options]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
olist=""
generate=""
replay_args=()
while (($#)); do
  case "$1" in
    --olist) olist="$2"; shift 2 ;;
    --generate) generate="$2"; shift 2 ;;
    *) replay_args+=("$1"); shift ;;
  esac
done
if [[ -z "$olist" && -z "$generate" && -d "$root/../shared/data/olist" ]]; then
  olist="$root/../shared/data/olist"
fi

scripts/install-deps.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release
bin="$root/build/release/bin"

work=$(mktemp -d /tmp/ringmart-demo.XXXXXX)
state="$work/state"
run="$work/run"
mkdir -p "$state" "$run"
# The shipped configuration, with the replay acting as the storefront's server:
# it places orders for the user ids it registers (customer_auth = "trusted").
sed 's/^customer_auth = "token"/customer_auth = "trusted"/' "$root/config/ringmart.toml" >"$work/ringmart.toml"
echo "== starting ringmart (state $state, runtime $run, logs $work/ringmart.log)"
"$bin/ringmart-supervisor" --state-dir "$state" --runtime-dir "$run" --config "$work/ringmart.toml" \
  >"$work/ringmart.log" 2>&1 &
sup=$!
stop() {
  if kill -0 "$sup" 2>/dev/null; then
    kill -TERM "$sup"
    wait "$sup" || true
  fi
}
trap stop EXIT

if [[ -n "$olist" ]]; then
  echo "== replaying Olist orders from $olist"
  "$bin/ringmart-replay" "$olist" --runtime-dir "$run" --verify "${replay_args[@]}"
else
  echo "== replaying a generated data set (${generate:-default size})"
  "$bin/ringmart-replay" --runtime-dir "$run" --verify ${generate:+--generate "$generate"} "${replay_args[@]}"
fi
echo
echo "== ringmartctl status"
"$bin/ringmartctl" --runtime-dir "$run" --state-dir "$state" status || true
echo
echo "== stopping"
stop
trap - EXIT
echo "stopped cleanly; state kept in $state"
