#!/usr/bin/env bash
# Before `make test`: make sure the real peers the tests start (ClickHouse,
# BIND, gobgpd, Alertmanager, ZooKeeper, Chromium, softflowd, nfdump, pmacct,
# nftables, fping — .ci/packages.txt) are installed. As root (or with
# passwordless sudo) it installs what is missing; otherwise it says what is
# missing, and the run ends with the list of the tests that were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(grep -v '^\s*#' .ci/packages.txt | sed 's/\s.*//' | grep -v '^$' | sort -u)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test peers: all ${#pkgs[@]} Debian packages present"
  exit 0
fi
if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
  echo "test peers: installing ${missing[*]}"
  exec bash scripts/install-deps.sh
fi
echo "test peers: MISSING ${missing[*]} (not root, no passwordless sudo)."
echo "            Tests that need them will be skipped and listed at the end; install with: sudo make deps"
