#!/usr/bin/env bash
# Runs every benchmark of the README's performance table and prints the
# table's rows. Build first: ./scripts/setup.sh (Release, build/).
set -euo pipefail
cd "$(dirname "$0")/.."
b=build/bench
[ -x "$b/bench_stateless" ] || { echo "build first: ./scripts/setup.sh" >&2; exit 1; }
"$b/bench_stateless" 50000000 | head -1
# Each figure is the median of three runs: this is a shared 2-core machine.
row() { # name, command...
  local name=$1; shift
  local a b c
  a=$("$@" | grep '^RESULT' | cut -d= -f2)
  b=$("$@" | grep '^RESULT' | cut -d= -f2)
  c=$("$@" | grep '^RESULT' | cut -d= -f2)
  local med; med=$(printf '%s\n' "$a" "$b" "$c" | sort -n | sed -n 2p)
  printf '| %s | `%s` | %.1f M |\n' "$name" "$*" "$(echo "$med" | awk '{print $1/1e6}')"
}
echo "| benchmark | command | events/s per core |"
echo "| --- | --- | --- |"
row "datagen -> filter -> map -> discard" "$b/bench_stateless" 50000000
row "window, tumbling 1 s, 1000 keys, 1 event per key per window" "$b/bench_window" 10000000 1000 1ms
row "window, tumbling 1 s, 1000 keys, 1000 events per key per window" "$b/bench_window" 20000000 1000 1us
row "window, 1000 keys, 1 event per key per window, RocksDB state (all keys fit its cache)" "$b/bench_window" 10000000 1000 1ms rocksdb
