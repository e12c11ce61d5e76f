#!/usr/bin/env bash
# tests/package/package_test.sh BUILD_DIR SOURCE_DIR — the Debian package as a
# user gets it: packs the build (packaging/make-deb.sh: CPack + lintian),
# unpacks it into a temporary root (dpkg-deb -x), checks its contents and
# control data, checks the units (systemd-analyze verify, clean; security
# --offline, exposure at most 2.0), then runs the Olist replay with --verify
# against the unpacked binaries (supervisor from ROOT/usr/bin, daemons from
# ROOT/usr/libexec/ringmart, the packaged configuration), not the build tree,
# with the listening sockets passed as systemd passes them
# (systemd-socket-activate, names api and admin), the whole system under
# strace: every system call it makes must pass the unit's SystemCallFilter.
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
olist="$src/../shared/data/olist"
work=$(mktemp -d /tmp/ringmart-package.XXXXXX)
sup=""
cleanup() {
  if [[ -n "$sup" ]] && kill -0 "$sup" 2>/dev/null; then
    kill -KILL "$sup" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "== pack and lint"
deb=$("$src/packaging/make-deb.sh" "$build" "$work/out" | tail -1)
[[ "$(basename "$deb")" =~ ^ringmart_[0-9][^_]*_$(dpkg --print-architecture)\.deb$ ]] ||
  fail "package name $(basename "$deb")"

echo "== contents"
root="$work/root"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/ringmart-supervisor usr/bin/ringmartctl usr/bin/ringmart-replay \
  usr/libexec/ringmart/ringmart-{user,product,coupon,order,payment,ranking,gateway}; do
  [[ -x "$root/$f" ]] || fail "no executable $f"
done
for f in etc/ringmart/ringmart.toml usr/lib/systemd/system/ringmart.service \
  usr/lib/systemd/system/ringmart-api.socket usr/lib/systemd/system/ringmart-admin.socket \
  usr/lib/systemd/system/ringmart-metrics.socket usr/lib/sysusers.d/ringmart.conf usr/lib/tmpfiles.d/ringmart.conf \
  usr/share/doc/ringmart/copyright usr/share/man/man8/ringmart-supervisor.8.gz; do
  [[ -f "$root/$f" ]] || fail "no file $f"
done
# Nothing of the build tree: no test programs, no path into it.
[[ -z "$(find "$root" -name '*_test' -o -name 'ringmart-attacker')" ]] || fail "test programs packaged"
if grep -rl --binary-files=text "$build" "$root/usr/lib" "$root/etc" >/dev/null; then
  fail "a packaged file names the build directory"
fi
grep -qx 'ExecStart=/usr/bin/ringmart-supervisor .*--config /etc/ringmart/ringmart.toml' \
  "$root/usr/lib/systemd/system/ringmart.service" || fail "ExecStart does not name the installed paths"
grep -q '^u ringmart ' "$root/usr/lib/sysusers.d/ringmart.conf" || fail "sysusers: no user ringmart"
grep -q '^g ringmart-api ' "$root/usr/lib/sysusers.d/ringmart.conf" || fail "sysusers: no group ringmart-api"
grep -q '^g ringmart-admin ' "$root/usr/lib/sysusers.d/ringmart.conf" || fail "sysusers: no group ringmart-admin"

echo "== control data"
control="$work/control"
dpkg-deb -e "$deb" "$control"
grep -qx /etc/ringmart/ringmart.toml "$control/conffiles" || fail "the configuration is not a conffile"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 liblmdb0 libcapnp libsystemd0 systemd; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
for s in postinst prerm postrm; do
  [[ -x "$control/$s" ]] || fail "no maintainer script $s"
  # Debian policy 9.3.3: installing a package never enables or starts a service.
  if grep -v '^[[:space:]]*#' "$control/$s" |
    grep -Eq 'systemctl[^#]*(enable|start)|deb-systemd-(helper +enable|invoke +start)'; then
    fail "$s enables or starts a service"
  fi
done

echo "== systemd units"
units="$root/usr/lib/systemd/system"
# verify resolves the units' dependencies (sysinit.target, sockets.target)
# and ExecStart inside --root: lend it the host's units, without replacing ours.
cp -an /lib/systemd/system/. "$units/"
# --man=no: the manual pages it would look up are lintian's to check.
verify=$(systemd-analyze verify --man=no --root="$root" "$units/ringmart.service" \
  "$units/ringmart-api.socket" "$units/ringmart-admin.socket" "$units/ringmart-metrics.socket" 2>&1) ||
  fail "systemd-analyze verify: $verify"
[[ -z "$verify" ]] || fail "systemd-analyze verify is not clean: $verify"
security=$(systemd-analyze security --offline=yes --root="$root" --threshold=20 \
  "$units/ringmart.service" 2>&1) || fail "exposure above 2.0: $(tail -1 <<<"$security")"
echo "${security##*$'\n'}"
for socket in api admin; do
  grep -qx "SocketGroup=ringmart-$socket" "$units/ringmart-$socket.socket" ||
    fail "$socket.sock is not for group ringmart-$socket"
  grep -qx "SocketMode=0660" "$units/ringmart-$socket.socket" || fail "$socket.sock is not 0660"
  grep -qx "FileDescriptorName=$socket" "$units/ringmart-$socket.socket" ||
    fail "$socket.sock is not passed as \"$socket\""
done

# The system calls the unit's SystemCallFilter= lines allow ("@group" and
# names; a "~" line denies), expanded by systemd-analyze syscall-filter.
expand() {
  local item
  for item in "$@"; do
    if [[ "$item" == @* ]]; then
      expand $(systemd-analyze syscall-filter "$item" | sed -n 's/^ \+\([@a-z0-9_-]\+\)$/\1/p')
    else
      echo "$item"
    fi
  done
}
allowed="$work/allowed"
: >"$allowed"
while IFS= read -r line; do
  filter=${line#SystemCallFilter=}
  if [[ "$filter" == "~"* ]]; then
    expand ${filter#\~} | sort -u >"$work/denied"
    comm -23 "$allowed" "$work/denied" >"$allowed.new"
    mv "$allowed.new" "$allowed"
  else
    expand $filter | sort -u - "$allowed" -o "$allowed"
  fi
done < <(grep '^SystemCallFilter=' "$units/ringmart.service")
[[ -s "$allowed" ]] || fail "the unit has no SystemCallFilter"

echo "== Olist replay on the unpacked binaries, sockets passed as systemd does"
[[ -f "$olist/olist_order_items_dataset.csv" ]] || fail "no Olist data at $olist"
state="$work/state"
run="$work/run"
mkdir -m 0700 "$state"
mkdir -m 0755 "$run"
# The packaged configuration, with its operators' group as a gid that needs
# no group entry (ringmart-admin exists only where the package was
# installed), so the group code paths run, and are traced, everywhere.
grep -q '^operator_group = "ringmart-admin"' "$root/etc/ringmart/ringmart.toml" ||
  fail "the packaged configuration does not name the operators' group"
# The replay acts as the storefront's server (customer_auth = "trusted"); the
# package ships "token".
grep -q '^customer_auth = "token"' "$root/etc/ringmart/ringmart.toml" ||
  fail "the packaged configuration does not default to customer_auth = \"token\""
sed -e 's/^operator_group = "ringmart-admin"/operator_group = "4242"/' \
  -e 's/^customer_auth = "token"/customer_auth = "trusted"/' \
  "$root/etc/ringmart/ringmart.toml" >"$work/ringmart.toml"
# systemd-socket-activate binds the sockets, waits for the first connection
# (the health probe below), then execs the supervisor (same pid) with them:
# api, admin, and the optional loopback TCP metrics socket of
# ringmart-metrics.socket.
grep -qx "FileDescriptorName=metrics" "$units/ringmart-metrics.socket" ||
  fail "ringmart-metrics.socket is not passed as \"metrics\""
grep -qx "ListenStream=127.0.0.1:9464" "$units/ringmart-metrics.socket" ||
  fail "ringmart-metrics.socket does not listen on loopback"
metrics_port=$((20000 + RANDOM % 20000))
strace -f -qq -o "$work/syscalls" \
  systemd-socket-activate -l "$run/api.sock" -l "$run/admin.sock" -l "127.0.0.1:$metrics_port" \
  --fdname=api:admin:metrics \
  "$root/usr/bin/ringmart-supervisor" --state-dir "$state" --runtime-dir "$run" \
  --config "$work/ringmart.toml" >"$work/supervisor.log" 2>&1 &
tracer=$!
for _ in $(seq 300); do
  curl -sf --max-time 10 --unix-socket "$run/api.sock" http://localhost/v1/health >/dev/null 2>&1 && break
  kill -0 "$tracer" 2>/dev/null || { cat "$work/supervisor.log" >&2; fail "the supervisor exited"; }
  sleep 0.1
done
sup=$(pgrep -f "^$root/usr/bin/ringmart-supervisor") || fail "no supervisor runs"
[[ $(stat -c %a:%g "$state/supervisor/lock.mdb") == 660:4242 ]] ||
  fail "lock.mdb is not the operators' (0660, gid 4242)"
grep -q 'api.sock and admin.sock: systemd' "$work/supervisor.log" ||
  fail "the supervisor did not take the passed sockets: $(cat "$work/supervisor.log")"
# Every daemon runs from the unpacked libexec directory.
for pid in $(pgrep -P "$sup"); do
  exe=$(readlink "/proc/$pid/exe")
  [[ "$exe" == "$root/usr/libexec/ringmart/ringmart-"* ]] || fail "daemon pid $pid runs $exe"
done
[[ $(pgrep -c -P "$sup") -eq 7 ]] || fail "$(pgrep -c -P "$sup") daemons run, not 7"
"$root/usr/bin/ringmart-replay" "$olist" --runtime-dir "$run" --concurrency 16 --verify \
  --stock-factor 0.9 2>&1 | tee "$work/replay.log"
grep -q '^verify: OK' "$work/replay.log" || fail "the replay's verify did not pass"
# The replay's orders, scraped over the passed TCP socket.
curl -sf --max-time 10 "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics.txt" ||
  fail "GET /metrics on the passed TCP socket failed"
grep -q '^ringmart_saga_duration_seconds_count{outcome="completed"} [1-9]' "$work/metrics.txt" ||
  fail "no completed sagas in /metrics over TCP"
"$root/usr/bin/ringmartctl" --runtime-dir "$run" --state-dir "$state" status >/dev/null ||
  fail "ringmartctl status: exit $?"
"$root/usr/bin/ringmartctl" --runtime-dir "$run" --state-dir "$state" restart gateway >/dev/null ||
  fail "ringmartctl restart gateway: exit $?"
for _ in $(seq 100); do
  curl -sf --max-time 10 --unix-socket "$run/api.sock" http://localhost/v1/health >/dev/null 2>&1 && break
  sleep 0.1
done
kill -TERM "$sup"
wait "$tracer" || fail "the supervisor exited $? on SIGTERM"
sup=""
[[ -S "$run/api.sock" && -S "$run/admin.sock" ]] || fail "the supervisor unlinked systemd's sockets"

echo "== system calls against SystemCallFilter"
sed -n 's/^[0-9]\+ \+\([a-z_0-9]\+\)(.*/\1/p' "$work/syscalls" | sort -u >"$work/used"
[[ $(wc -l <"$work/used") -gt 30 ]] || fail "strace recorded $(wc -l <"$work/used") system calls"
# execve of the supervisor itself is systemd-socket-activate's, before any filter would apply.
outside=$(comm -23 "$work/used" "$allowed")
[[ -z "$outside" ]] || fail "system calls the unit's filter denies: $outside"
echo "$(wc -l <"$work/used") distinct system calls, all allowed"
echo "package test: OK ($(basename "$deb"))"
