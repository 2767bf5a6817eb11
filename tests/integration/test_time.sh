#!/usr/bin/env bash
# Time behaviours seen from outside: idle inputs leave the watermark
# minimum; processing time where a source has no event_time; the progress
# line on a terminal.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/time.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

# Two sources into one window: `busy` moves event time on, `quiet` sends one
# event every 5 s and is otherwise silent. With idle_timeout the quiet
# source drops out of the minimum and busy's windows fire while the job
# runs; without it they cannot fire until quiet's watermark moves.
idle_job() {
  cat > "$work/idle$1.yaml" <<YAML
name: idle
state: {backend: memory}
sources:
  busy:
    type: datagen
    generator: sequence
    rate: 4000
    keys: 2
    event_time: ts
  quiet:
    type: datagen
    generator: sequence
    rate: 0.2
    keys: 2
    event_time: ts
    $2
operators:
  per_key:
    type: window_aggregate
    inputs: [busy, quiet]
    key: [key]
    window: {type: tumbling, size: 100ms}
    aggregates: {n: count()}
sinks:
  out: {type: stdout, inputs: [per_key]}
YAML
}
idle_job 1 "watermark: {idle_timeout: 200ms}"
idle_job 2 ""
# Both run side by side (the same machine, the same load) until the first
# has fired 10 windows, then are interrupted; the deadline (120 s) only
# catches a hang.
"$RUNNEL" run "$work/idle1.yaml" --quiet > "$work/idle1.out" 2>/dev/null &
p1=$!
"$RUNNEL" run "$work/idle2.yaml" --quiet > "$work/idle2.out" 2>/dev/null &
p2=$!
for _ in $(seq 2400); do
  [ "$(wc -l < "$work/idle1.out")" -ge 10 ] && break
  sleep 0.05
done
# A second more for the second job: it started with the first and had as
# long, plus this, to fire a window it should not.
sleep 1
kill -INT $p1 $p2 2>/dev/null
wait $p1 $p2
n1=$(wc -l < "$work/idle1.out"); n2=$(wc -l < "$work/idle2.out")
check '[ "$n1" -ge 10 ]' "with idle_timeout, windows fire while the other source is idle ($n1 windows)"
check '[ "$n2" -eq 0 ]' "without idle_timeout, the silent source holds the watermark back ($n2 windows)"

# Processing time: no event_time, so rows are stamped with the clock and
# the watermark follows it; every event is counted once.
cat > "$work/proc.yaml" <<YAML
name: proc
state: {backend: memory}
sources:
  gen: {type: datagen, generator: sequence, events: 3000, rate: 2000, keys: 3}
operators:
  per_key:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 500ms}
    aggregates: {n: count()}
sinks:
  out: {type: file, inputs: [per_key], path: "$work/proc.jsonl"}
YAML
"$RUNNEL" run "$work/proc.yaml" --quiet
check '[ $? -eq 0 ]' "processing-time job ends by itself"
total=$(grep -o '"n":[0-9]*' "$work/proc.jsonl" | cut -d: -f2 | awk '{s+=$1} END {print s}')
windows=$(wc -l < "$work/proc.jsonl")
check '[ "$total" = 3000 ]' "processing-time windows count every event once (total $total)"
check '[ "$windows" -ge 6 ]' "1.5 s of processing time gives several 500 ms windows per key ($windows)"

# The progress line is drawn on a terminal (script gives the job a pty).
if command -v script >/dev/null; then
  cat > "$work/long.yaml" <<YAML
name: long
sources:
  gen: {type: datagen, generator: sequence, events: 6000, rate: 2500, event_time: ts}
sinks:
  out: {type: discard, inputs: [gen]}
YAML
  script -qec "$RUNNEL run $work/long.yaml" /dev/null > "$work/tty.out" 2>&1
  check 'grep -q "watermark 2023-11-14T" "$work/tty.out" && grep -q "in [0-9.k]*/s" "$work/tty.out"' \
        "progress line shows rates and the watermark on a terminal"
  check 'grep -q "job finished: 6000 records in" "$work/tty.out"' "final summary line"
fi
exit $fail
