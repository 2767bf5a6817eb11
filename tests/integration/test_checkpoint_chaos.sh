#!/usr/bin/env bash
# The checkpoint chaos test: a bounded generated job (datagen at a fixed
# rate -> tumbling windows -> exactly-once file sink, a checkpoint every
# 200 ms) is killed with SIGKILL at random moments, and in bursts (kills
# within a fraction of a second of a start, so that a restore is itself
# interrupted), at least 20 times, and started again each time with the
# same command. The final file must equal a clean run's output byte for
# byte: no window lost, none twice, none wrong. With parallelism 2 the
# order of lines from the two window instances is not fixed even between
# clean runs, so there the sorted lines are compared.
#
# RN_CHAOS_KILLS (default 22) and RN_CHAOS_SEED set the schedule; the
# seed is printed so that a failure can be replayed.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/chaos.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
kills=${RN_CHAOS_KILLS:-22}
seed=${RN_CHAOS_SEED:-$RANDOM}
RANDOM=$seed
echo "seed $seed, $kills kills"

job() { # NAME PARALLELISM DIR
  mkdir -p "$work/$3"
  cat > "$work/$3/job.yaml" <<YAML
name: $1
parallelism: $2
checkpoints: {interval: 200ms, dir: "$work/$3/ckpt", retain: 2}
state: {backend: rocksdb, dir: "$work/$3/state", memory: 16MB}
sources:
  gen: {type: datagen, generator: sequence, events: 2000000, rate: 100000, keys: 200, event_time: ts}
operators:
  per_key:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 2s}
    aggregates: {n: count(), total: sum(value), hi: max(id)}
sinks:
  out: {type: file, inputs: [per_key], path: "$work/$3/out.jsonl"}
YAML
}

chaos() { # DIR PARALLELISM
  local d=$work/$1 n=0 resumed runs=0 produced=0
  while [ $n -lt "$kills" ]; do
    "$RUNNEL" run "$d/job.yaml" --quiet >> "$d/log" 2>&1 &
    local pid=$!
    runs=$((runs + 1))
    # Every fourth kill starts a burst: killed again within 50-250 ms of
    # the start, while the restore may still be running.
    if [ $((n % 4)) -eq 3 ]; then
      sleep "0.$(printf '%02d' $((5 + RANDOM % 20)))"
    else
      sleep "$((RANDOM % 2)).$(printf '%02d' $((RANDOM % 100)))"
    fi
    if ! kill -9 "$pid" 2>/dev/null; then
      wait "$pid"
      echo "run $runs ended by itself before kill $n (rc $?)"
      break
    fi
    wait "$pid" 2>/dev/null
    n=$((n + 1))
    [ -s "$d/out.jsonl" ] && produced=1
  done
  echo "$n kills in $runs runs"
  check '[ "$n" -ge 20 ] || [ "$n" -ge "$kills" ]' "$1: killed $n times"
  check '[ "$produced" -eq 1 ]' "$1: committed output appeared while the job was being killed"
  resumed=$(grep -c "resuming from checkpoint" "$d/log")
  check '[ "$resumed" -ge 5 ]' "$1: runs resumed from checkpoints ($resumed)"
  "$RUNNEL" run "$d/job.yaml" --quiet >> "$d/log" 2>&1
  check '[ $? -eq 0 ]' "$1: the last run finishes"
  if grep -q "job failed" "$d/log"; then
    echo "FAIL: $1: a run failed:"; grep "job failed" "$d/log" | head -3; fail=1
  fi
}

# A clean run: the same job, never killed. 2M events 1 ms apart: 1000
# windows of 2 s, each with 10 events of each of 200 keys.
job chaos1 1 clean1
"$RUNNEL" run "$work/clean1/job.yaml" --quiet || fail=1
lines=$(wc -l < "$work/clean1/out.jsonl")
check '[ "$lines" -eq 200000 ]' "clean run: 1000 windows of 200 keys ($lines lines)"
check '! grep -qv "\"n\":10," "$work/clean1/out.jsonl"' "clean run: every window counts 10 events"

job chaos1 1 run1
chaos run1 1
check 'cmp -s "$work/run1/out.jsonl" "$work/clean1/out.jsonl"' \
  "parallelism 1: the output equals the clean run's byte for byte"
if ! cmp -s "$work/run1/out.jsonl" "$work/clean1/out.jsonl"; then
  diff <(sort "$work/run1/out.jsonl") <(sort "$work/clean1/out.jsonl") | head -5
fi

job chaos2 2 run2
kills=$((kills / 2 > 20 ? kills / 2 : 20))
chaos run2 2
check 'cmp -s <(sort "$work/run2/out.jsonl") <(sort "$work/clean1/out.jsonl")' \
  "parallelism 2: the output has the clean run's lines, each once"
if ! cmp -s <(sort "$work/run2/out.jsonl") <(sort "$work/clean1/out.jsonl"); then
  diff <(sort "$work/run2/out.jsonl") <(sort "$work/clean1/out.jsonl") | head -5
fi
left=$(ls "$work/run1" | grep -c pending || true)
check '[ "$left" -eq 0 ]' "no pending files left next to the output"
exit $fail
