#!/usr/bin/env bash
# packaging/make-deb.sh BUILD_DIR OUT_DIR — packs a configured and built
# ringmart tree into OUT_DIR/ringmart_<version>_<arch>.deb (CPack's DEB
# generator, packaging/CMakeLists.txt) and checks it with lintian. Prints the
# package's path on the last line. Exit 1 when CPack fails or lintian reports
# an error or a warning other than the accepted ones below.
set -euo pipefail
build=$(realpath "$1")
out=$(realpath -m "$2")
mkdir -p "$out"
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out" >"$out/cpack.log" 2>&1 || {
  cat "$out/cpack.log" >&2
  exit 1
}
deb=$(ls "$out"/ringmart_*.deb)
# Accepted, with the reason (packaging/README.md):
# - package-supports-alternative-init-but-no-init.d-script: the service is
#   Type=notify with a watchdog and socket units; a SysV script could give none
#   of that, and Debian 12 boots with systemd.
# - spelling-error-in-binary: "FAILt" is the "FAIL\t" column of a report.
# - binary-has-unneeded-section: the linker's .comment (compiler version), as
#   in most of Debian's own binaries built without dh_strip.
accepted=package-supports-alternative-init-but-no-init.d-script,spelling-error-in-binary,binary-has-unneeded-section
# (lintian notes that it runs as root; that line is not a finding.)
if ! lintian --fail-on=error,warning --suppress-tags="$accepted" "$deb" >"$out/lintian.log" 2>&1; then
  grep -v '^running with root privileges' "$out/lintian.log" >&2 || true
  echo "make-deb: lintian reports errors or warnings on $deb (above)" >&2
  exit 1
fi
echo "$deb"
