#!/usr/bin/env bash
# make demo: install what is missing, build, run Meridian on its embedded
# default (managed local ClickHouse) and print how to reach it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
bash scripts/install-deps.sh scripts/demo-packages.txt
make --no-print-directory build
exec ./bin/meridian demo "$@"
