#!/usr/bin/env bash
# Installs ringmart's build and test dependencies from Debian 12 packages.
# Idempotent: apt-get skips what is already installed. Run as root (or via sudo).
set -euo pipefail
packages=(
  build-essential cmake pkg-config ninja-build
  capnproto libcapnp-dev
  liblmdb-dev lmdb-utils
  libboost-dev
  libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
  libsystemd-dev libsodium-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-19 libclang-rt-19-dev
  curl
  dpkg-dev lintian help2man strace systemd
  prometheus
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
