#!/usr/bin/env bash
# tests/integration/journal_test.sh BUILD_DIR — the system's logs in a real
# journald: in a private mount namespace (nothing of the host's /run or
# /var/log is touched) with tmpfs over /run/systemd, /run/log and
# /var/log/journal, it starts /lib/systemd/systemd-journald, runs the whole
# system from the build tree with log_format = "journal" (log_level debug),
# places one order with a W3C traceparent and one that fails, and checks with
# journalctl that ORDER_ID=<id> shows the order's path through the gateway,
# order, supervisor, product and payment daemons, every line in the caller's
# trace (TRACE_ID), and that the failure is there at info priority.
# Needs root and a mount namespace (unshare, mount) and systemd-journald;
# exits 77 (skipped) otherwise.
set -euo pipefail
build=$(realpath "$1")
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root for a private mount namespace"
  exit 77
fi
if [[ -z "${RINGMART_JOURNAL_NAMESPACE:-}" ]]; then
  # A container without CAP_SYS_ADMIN cannot make the namespace: skipped, not failed.
  if ! unshare --mount --propagation private true 2>/dev/null; then
    echo "SKIP: cannot create a mount namespace here"
    exit 77
  fi
  [[ -x /lib/systemd/systemd-journald ]] || { echo "SKIP: no systemd-journald"; exit 77; }
  exec env RINGMART_JOURNAL_NAMESPACE=1 unshare --mount --propagation private "$0" "$@"
fi
work=$(mktemp -d /tmp/ringmart-journal.XXXXXX)
journald=""
sup=""
cleanup() {
  [[ -n "$sup" ]] && kill -TERM "$sup" 2>/dev/null && wait "$sup" 2>/dev/null || true
  [[ -n "$journald" ]] && kill -TERM "$journald" 2>/dev/null && wait "$journald" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "== a private journald"
mkdir -p /run/systemd /run/log /var/log/journal
for dir in /run/systemd /run/log /var/log/journal; do mount -t tmpfs tmpfs "$dir"; done
/lib/systemd/systemd-journald >"$work/journald.log" 2>&1 &
journald=$!
for _ in $(seq 100); do [[ -S /run/systemd/journal/socket ]] && break; sleep 0.05; done
[[ -S /run/systemd/journal/socket ]] || fail "journald did not start: $(cat "$work/journald.log")"

echo "== the system, logging to it"
state="$work/state"
run="$work/run"
mkdir -m 0700 "$state"
mkdir -m 0755 "$run"
cat >"$work/ringmart.toml" <<'EOF'
[runtime]
durability = "process"
log_format = "journal"
log_level = "debug"
[gateway]
customer_auth = "trusted"
EOF
"$build/bin/ringmart-supervisor" --state-dir "$state" --runtime-dir "$run" \
  --config "$work/ringmart.toml" >"$work/supervisor.log" 2>&1 &
sup=$!
api() { curl -sS --max-time 20 --unix-socket "$run/api.sock" "$@"; }
admin() { curl -sS --max-time 20 --unix-socket "$run/admin.sock" "$@"; }
for _ in $(seq 300); do
  api -f http://localhost/v1/health >/dev/null 2>&1 && break
  kill -0 "$sup" 2>/dev/null || fail "the supervisor exited: $(cat "$work/supervisor.log")"
  sleep 0.1
done
api -f http://localhost/v1/health >/dev/null || fail "the system did not become healthy"
# Nothing on stderr: every line went to the journal.
[[ ! -s "$work/supervisor.log" ]] || fail "lines on stderr: $(head -5 "$work/supervisor.log")"

product=$(admin -X POST http://localhost/v1/products \
  -d '{"name":"lamp","category":"home","price":1500,"stock":2}' | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
user=$(api -X POST http://localhost/v1/users \
  -d '{"name":"journal","email":"journal@example.com"}' | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
[[ -n "$product" && -n "$user" ]] || fail "no product ($product) or user ($user)"

trace=4bf92f3577b34da6a3ce929d0e0e4736
order_body() {
  echo "{\"user_id\":$user,\"items\":[{\"product_id\":$product,\"quantity\":$1}],\"payment\":{\"token\":\"tok_ok\"}}"
}
api -D "$work/headers" -o "$work/order.json" -X POST http://localhost/v1/orders \
  -H "traceparent: 00-$trace-00f067aa0ba902b7-01" -H 'Prefer: wait=10' -d "$(order_body 1)"
grep -q '"status":"COMPLETED"' "$work/order.json" || fail "order: $(cat "$work/order.json")"
order=$(sed -n 's/.*"order_id":\([0-9]*\).*/\1/p' "$work/order.json")
grep -qi "^traceresponse: 00-$trace-[0-9a-f]\{16\}-01" "$work/headers" ||
  fail "no traceresponse in the caller's trace: $(cat "$work/headers")"
failed_json=$(api -X POST http://localhost/v1/orders -H 'Prefer: wait=10' -d "$(order_body 5)")
[[ "$failed_json" == *'"status":"FAILED"'* ]] || fail "the second order: $failed_json"
failed=$(sed -n 's/.*"order_id":\([0-9]*\).*/\1/p' <<<"$failed_json")
# The saga ends after its order: wait until the supervisor logged it.
for _ in $(seq 100); do
  admin -s "http://localhost/v1/sagas/$failed" | grep -q '"state":"FAILED"' && break
  sleep 0.1
done

echo "== journalctl ORDER_ID=$order"
journalctl --no-pager --sync >/dev/null 2>&1 || true
journalctl --no-pager ORDER_ID="$order" -o short-monotonic --output-fields=DAEMON,MESSAGE >"$work/path.txt" || true
cat "$work/path.txt"
daemons=$(journalctl --no-pager ORDER_ID="$order" -o cat --output-fields=DAEMON | sort -u | tr '\n' ' ')
for d in gateway order supervisor product payment; do
  [[ " $daemons" == *" $d "* ]] || fail "no line of $d for order $order (daemons: $daemons)"
done
traces=$(journalctl --no-pager ORDER_ID="$order" -o cat --output-fields=TRACE_ID | sort -u)
[[ "$traces" == "$trace" ]] || fail "order $order's lines are in traces: $traces"
by_order=$(journalctl --no-pager ORDER_ID="$order" -o cat | wc -l)
by_trace=$(journalctl --no-pager TRACE_ID="$trace" -o cat | wc -l)
[[ $by_order -ge 10 && $by_order -eq $by_trace ]] ||
  fail "$by_order lines by ORDER_ID, $by_trace by TRACE_ID"
journalctl --no-pager ORDER_ID="$order" SYSLOG_IDENTIFIER=ringmart-product -o cat | grep -q . ||
  fail "no line with SYSLOG_IDENTIFIER=ringmart-product"

echo "== journalctl ORDER_ID=$failed PRIORITY=6 (the failure at info)"
journalctl --no-pager ORDER_ID="$failed" PRIORITY=6 DAEMON=supervisor -o cat | tee "$work/failed.txt"
grep -q "OUT_OF_STOCK" "$work/failed.txt" || fail "the failure of order $failed is not logged at info"
echo "journal test: OK ($by_order lines for order $order)"
