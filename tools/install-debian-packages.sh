#!/usr/bin/env bash
# Installs the Debian packages ParetoPrune uses, where missing. Idempotent; needs root or sudo.
#   dataset-fashion-mnist: the full Fashion-MNIST (60k/10k) in /usr/share/datasets/fashion-mnist
#                          (without it the tool falls back to the sample embedded in the assembly)
#   chromium:              a real headless browser for the report's tests (skipped, with the reason, without it)
#   postgresql:            a real server for the shared-study tests, which start a throwaway cluster of their own
#                          (skipped, with the reason, without it); also what `search --storage` talks to
#   qemu-user-static, libstdc++6:arm64, libssl3:arm64:
#                          user-mode arm64 emulation and the libraries the Pi agent (src/Agent, linux-arm64) needs, for
#                          the test that runs it (skipped, with the reason, without them); arm64 is added as a
#                          foreign dpkg architecture for the last two
set -euo pipefail
needed=()
[ -d /usr/share/datasets/fashion-mnist ] || needed+=(dataset-fashion-mnist)
command -v chromium >/dev/null || needed+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || needed+=(postgresql)
arm64=()
if [ "$(dpkg --print-architecture)" = amd64 ]; then
  [ -x /usr/bin/qemu-aarch64-static ] || needed+=(qemu-user-static)
  # Debian 13 renamed libssl3 (64-bit time_t); Debian 12 has libssl3.
  ssl=libssl3; [ "$(. /etc/os-release; echo "${VERSION_CODENAME:-}")" = bookworm ] || ssl=libssl3t64
  [ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] || arm64+=(libstdc++6:arm64)
  [ -e /usr/lib/aarch64-linux-gnu/libssl.so.3 ] || arm64+=("$ssl:arm64")
fi
[ ${#needed[@]} -eq 0 ] && [ ${#arm64[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
install() {
  for attempt in 1 2; do
    if $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "$@"; then return 0; fi
    echo "apt-get failed (attempt $attempt); retrying" >&2
    sleep 5
  done
  return 1
}
if [ ${#needed[@]} -gt 0 ]; then install "${needed[@]}" || exit 1; fi
# The arm64 libraries only serve the emulated agent test: a failure here is reported, not fatal (the test says why it skips).
if [ ${#arm64[@]} -gt 0 ]; then
  added=""
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then $sudo dpkg --add-architecture arm64 && added=1; fi
  if ! install "${arm64[@]}"; then
    echo "warning: could not install ${arm64[*]}; the emulated Pi agent test will be skipped" >&2
    [ -n "$added" ] && $sudo dpkg --remove-architecture arm64 || true
  fi
fi
exit 0
