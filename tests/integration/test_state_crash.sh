#!/usr/bin/env bash
# A job killed with SIGKILL while it holds RocksDB state: its per-run state
# directory is left behind, the next run of the job removes it (its process
# is dead), never reads it, and produces the same output as a clean run.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/state_crash.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

job() { # NAME EVENTS RATE KEYS
  cat > "$work/$1.yaml" <<YAML
name: crash
state: {backend: rocksdb, dir: "$work/state", memory: 8MB}
sources:
  gen: {type: datagen, generator: sequence, events: $2, rate: $3, keys: $4, event_time: ts}
operators:
  per_key:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 10s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: file, inputs: [per_key], path: "$work/$1.jsonl"}
YAML
}

# A slow run, killed while its state is live.
job slow 10000000 200000 50000
"$RUNNEL" run "$work/slow.yaml" --quiet &
pid=$!
# Killed once its state is live: its directory exists and holds RocksDB's
# files (the deadline only catches a hang).
for _ in $(seq 3000); do
  ls "$work"/state/*/* > /dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
left=$(ls "$work/state" | wc -l)
check '[ "$left" -ge 1 ]' "a killed run leaves its state directory ($left)"
check '[ ! -e "$work/slow.jsonl" ]' "a killed run leaves no output file"
stale=$(ls "$work/state")

# The next run: a fresh directory, the stale one removed, exact output.
job next 200000 0 500
"$RUNNEL" run "$work/next.yaml" > "$work/next.log" 2>&1
check '[ $? -eq 0 ]' "the next run succeeds"
for d in $stale; do
  check '[ ! -e "$work/state/$d" ]' "stale directory $d removed"
done
check '[ -z "$(ls "$work/state")" ]' "the finished run removed its own directory"
# 200000 events, 1 ms apart: 20 windows of 10 s; each of 500 keys comes
# every 500 ms, so 20 times in each window.
windows=$(wc -l < "$work/next.jsonl")
total=$(grep -o '"n":[0-9]*' "$work/next.jsonl" | cut -d: -f2 | awk '{s+=$1} END {print s}')
check '[ "$windows" -eq 10000 ]' "every window fired once ($windows of 10000)"
check '! grep -qv "\"n\":20," "$work/next.jsonl"' "every window counts its 20 events"
check '[ "$total" -eq 200000 ]' "every event counted once ($total)"
exit $fail
