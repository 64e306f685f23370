#!/usr/bin/env bash
# Runs every Fuzz target of the module for the given time each.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
fail=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  echo "== $pkg $name ($t)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$pkg" || fail=1
done < <(git ls-files '*_test.go' | xargs grep -H -E '^func Fuzz[A-Za-z0-9_]*\(' )
exit $fail
