#!/usr/bin/env bash
# Runs every benchmark of the README's performance table and prints the
# table's rows. Build first: ./scripts/setup.sh (Release, build/).
set -euo pipefail
cd "$(dirname "$0")/.."
b=build/bench
[ -x "$b/bench_stateless" ] || { echo "build first: ./scripts/setup.sh" >&2; exit 1; }
"$b/bench_stateless" 50000000 | head -1
row() { # name, command...
  local name=$1; shift
  local out; out=$("$@" | grep '^RESULT' | cut -d= -f2)
  printf '| %s | %s | %.1f M |\n' "$name" "$*" "$(echo "$out" | awk '{print $1/1e6}')"
}
echo "| benchmark | command | events/s per core |"
echo "| --- | --- | --- |"
row "datagen -> filter -> map -> discard" "$b/bench_stateless" 50000000
row "window, tumbling 1 s, 1000 keys, 1 event per key per window" "$b/bench_window" 10000000 1000 1ms
row "window, tumbling 1 s, 1000 keys, 1000 events per key per window" "$b/bench_window" 20000000 1000 1us
