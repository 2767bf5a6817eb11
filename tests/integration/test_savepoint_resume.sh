#!/usr/bin/env bash
# After `runnel stop ADDR --savepoint DIR`, which says "job stopped at
# checkpoint N ... runnel run continues from it", a plain `runnel run`
# continues from N: the savepoint is also checkpoint N in the checkpoints
# directory (the sinks committed on it; resuming from the checkpoint
# before it went back). The same for a savepoint taken while the job goes
# on and a crash right after it. Output exact both ways.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/spresume.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"; kill -9 $(jobs -p) 2>/dev/null' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
port=$((20000 + ($$ * 13) % 30000))

write_job() { # DIR [RATE]
  mkdir -p "$1"
  port=$((port + 1))
  cat > "$1/job.yaml" <<YAML
name: spresume
checkpoints: {interval: 200ms, dir: ./ckpt}
state: {backend: rocksdb, dir: ./state, memory: 16MB}
rest: {listen: 127.0.0.1:$port}
sources:
  gen: {type: datagen, generator: sequence, events: 100000, keys: 20, event_time: ts$([ -n "${2:-}" ] && echo ", rate: $2")}
operators:
  per_key:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 100ms}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: file, inputs: [per_key], path: ./out.jsonl}
YAML
}
complete() { ls "$1" 2>/dev/null | grep -cE '^chk-[0-9]+$'; }
start() { # DIR: runs the job, waits for two checkpoints
  (cd "$1" && exec "$RUNNEL" run job.yaml --quiet >> log 2>&1) &
  pid=$!
  for _ in $(seq 600); do
    [ "$(complete "$1/ckpt")" -ge 2 ] || ! kill -0 $pid 2> /dev/null && break
    sleep 0.05
  done
}

write_job "$work/clean"
(cd "$work/clean" && "$RUNNEL" run job.yaml --quiet 2> /dev/null)
check '[ "$(wc -l < "$work/clean/out.jsonl")" -eq 20000 ]' "clean run: 1000 windows of 20 keys"

# Stop with a savepoint, then a plain run.
d=$work/stop
write_job "$d" 20000
start "$d"
"$RUNNEL" stop "127.0.0.1:$port" --savepoint "$d/ckpt/savepoints/last" > /dev/null 2>&1
wait $pid
n=$(grep -o 'stopped at checkpoint [0-9]*' "$d/log" | grep -o '[0-9]*$')
check '[ -n "$n" ] && [ -f "$d/ckpt/savepoints/last/_metadata" ]' "stop --savepoint: stopped at checkpoint $n"
(cd "$d" && "$RUNNEL" run job.yaml > /dev/null 2> err)
check 'grep -q "resuming from checkpoint $n\$" "$d/err"' "a plain run continues from checkpoint $n ($(grep -o 'resuming from .*' "$d/err"))"
check 'cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"' "stop --savepoint: the output is exact"

# A savepoint while the job goes on, then kill -9 before the next
# checkpoint: the run after resumes from the savepoint's number.
d=$work/crash
write_job "$d" 20000
start "$d"
sp=$("$RUNNEL" savepoint "127.0.0.1:$port" 2> /dev/null | tail -1)
kill -STOP $pid
id=$(grep -o '"id": [0-9]*' "$sp/_metadata" | grep -o '[0-9]*$')
newest=$(ls "$d/ckpt" | grep -E '^chk-[0-9]+$' | sort | tail -1)
check '[ -n "$id" ] && [ -f "$d/ckpt/$(printf chk-%08d "$id")/_metadata" ]' "the savepoint ($id) is checkpoint $id too"
kill -9 $pid; wait $pid 2> /dev/null
rm -rf "$d"/ckpt/*.inprogress
(cd "$d" && "$RUNNEL" run job.yaml > /dev/null 2> err)
check '[ $? -eq 0 ] && grep -q "resuming from checkpoint $((10#${newest#chk-}))\$" "$d/err"' "after kill -9 the run resumes from $newest"
check 'cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"' "savepoint then crash: the output is exact"
exit $fail
