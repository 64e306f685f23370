#!/usr/bin/env bash
# Installs the Debian packages listed in .ci/packages.txt that are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
list=${1:-.ci/packages.txt}
mapfile -t pkgs < <(grep -v '^\s*#' "$list" | sed 's/\s.*//' | grep -v '^$' | sort -u)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "all ${#pkgs[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
