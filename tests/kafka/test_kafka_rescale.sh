#!/usr/bin/env bash
# tests/kafka/test_kafka_rescale.sh: the exactly-once Kafka sink across a
# change of parallelism (tests/kafka/broker.sh; docs/kafka.md, "rescale").
#
# A Kafka -> window -> Kafka exactly-once job at parallelism 3 takes a
# savepoint and dies at once after it, before its sink commits
# (RN_CRASH_AT=kafka.before_commit): the savepoint holds uncommitted
# epochs of three transactional.ids. It resumes from the savepoint at
# parallelism 2: the two new instances fence the id of instance 2, which
# no longer exists, and send its epochs as well as their own. Then
# 2 -> 4 through `runnel stop --savepoint`. A read_committed reader sees
# exactly the windows of a clean run.
#
# Env: RUNNEL, KAFKA_PRODUCE, RN_TEST_TMP.
set -uo pipefail
: "${RUNNEL:?}" "${KAFKA_PRODUCE:?}" "${RN_TEST_TMP:=/tmp}"
. "$(dirname "$0")/lib.sh"
kafka_test_start kafka_rescale
kafka_topic in 3
kafka_topic out 3
kafka_topic expect 3

N=6000
lines() { # FIRST LAST: "KEY<TAB>JSON" lines, event time 10 ms apart
  awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
    printf "k%d\t{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}\n", i % 30, i, i % 30, i % 1000, 1700000000000 + i * 10 }'
}
port=$((20000 + RANDOM % 20000))
window_job() { # DIR OUT-TOPIC JOB-NAME PARALLELISM
  mkdir -p "$1"
  port=$((port + 1))
  cat > "$1/job.yaml" <<YAML
name: $3
parallelism: $4
checkpoints: {interval: 1h, dir: ./ckpt}
rest: {listen: 127.0.0.1:$port}
sources:
  src:
    type: kafka
    brokers: '$addr'
    topic: in
    schema: {id: int, key: string, value: int, ts: timestamp}
    event_time: ts
    watermark: {max_out_of_orderness: 0ms}
operators:
  per_key:
    type: window_aggregate
    inputs: [src]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: kafka, inputs: [per_key], brokers: '$addr', topic: $2, key: [key], delivery: exactly-once}
YAML
}
addr_of() { sed -n 's/.*listen: \(127.0.0.1:[0-9]*\).*/\1/p' "$1/job.yaml"; }
wait_rest() { # DIR
  for _ in $(seq 1200); do
    curl -sf "http://$(addr_of "$1")/status" > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
read_back() { # DIR TOPIC: the topic's messages, read_committed, to the end
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: readback
sources:
  src: {type: kafka, brokers: '$addr', topic: $2, bounded: latest, format: raw, schema: {line: string}}
sinks:
  out: {type: file, inputs: [src], path: ./out.jsonl}
YAML
  read_committed_stable "$1"
}

lines 0 $((N / 2 - 1)) | "$KAFKA_PRODUCE" "$addr" in 3 2>/dev/null

# ---- 3 -> 2, with uncommitted epochs ------------------------------------------------
d=$work/resc
window_job "$d" out kresc 3
(cd "$d" && exec env RN_CRASH_AT=kafka.before_commit timeout 120 "$RUNNEL" run job.yaml >> log 2>&1) &
pid=$!
wait_rest "$d"
# The first half read (its windows fire as it goes; the savepoint's
# barrier comes after them). A deadline for a hang only.
records_in() { curl -sf "http://$(addr_of "$1")/status" | grep -o '"records_in": *[0-9]*' | grep -o '[0-9]*$'; }
for _ in $(seq 1200); do [ "$(records_in "$d")" = $((N / 2)) ] && break; sleep 0.1; done
"$RUNNEL" savepoint "$(addr_of "$d")" "$d/ckpt/savepoints/sp1" > "$d/sp1.out" 2>&1
wait $pid
st=$?
check '[ $st -eq 77 ]' "p3: the job died before committing the savepoint's epochs (status $st)"
check '[ -f "$d/ckpt/sp1/_metadata" ] || ls "$d/ckpt/savepoints/sp1" > /dev/null 2>&1' "p3: the savepoint was written"
lines $((N / 2)) $((N - 1)) | "$KAFKA_PRODUCE" "$addr" in 3 2>/dev/null
window_job "$d" out kresc 2
(cd "$d" && exec timeout 120 "$RUNNEL" run job.yaml --from-savepoint "$d/ckpt/savepoints/sp1" >> log 2>&1) &
pid=$!
wait_rest "$d"
# The restored epochs sent again (at the first record or barrier).
for _ in $(seq 1200); do grep -q "kresc-out-2.*sent again" "$d/log" && break; sleep 0.1; done
sp=$("$RUNNEL" stop "$(addr_of "$d")" --savepoint "$d/ckpt/savepoints/sp2" 2> "$d/stop.err" | tail -1)
wait $pid
st=$?
check '[ $st -eq 0 ] && grep -q "resuming from savepoint" "$d/log"' "3 -> 2: resumed from the savepoint and stopped with another (status $st)"
check 'grep -q "kresc-out-2.*sent again" "$d/log"' \
  "3 -> 2: the epochs of instance 2, which no longer exists, were sent by a new instance"

# ---- 2 -> 4 ----------------------------------------------------------------------------
window_job "$d" out kresc 4
(cd "$d" && timeout 120 "$RUNNEL" run job.yaml --from-savepoint "$sp" --set sources.src.bounded=latest >> log 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "2 -> 4: resumed from the stop's savepoint, read to the end (rc $rc)"
check 'grep -qw "resuming from savepoint 2" "$d/log"' \
  "checkpoint numbers go on after a savepoint (the stop's savepoint is 2, not 1 again)"
check '! grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$d/log"' "no sanitizer report"

window_job "$work/clean" expect kresc-clean 2
(cd "$work/clean" && timeout 120 "$RUNNEL" run job.yaml --set sources.src.bounded=latest --quiet > log 2>&1)
read_back "$work/rb-out" out
rc1=$?
read_back "$work/rb-expect" expect
n=$(wc -l < "$work/rb-expect/out.jsonl" 2>/dev/null || echo 0)
check '[ $rc1 -eq 0 ]' "a read_committed reader reaches the end of every partition of out (rc $rc1)"
check '[ "$n" -ge 1800 ]' "the clean run produced windows ($n)"
check '[ -s "$work/rb-out/out.jsonl" ] && cmp -s <(sort "$work/rb-out/out.jsonl") <(sort "$work/rb-expect/out.jsonl")' \
  "after 3 -> 2 -> 4, out holds every window once and right ($(wc -l < "$work/rb-out/out.jsonl" 2>/dev/null) lines, $(sort "$work/rb-out/out.jsonl" 2>/dev/null | uniq -d | wc -l) twice)"
exit $fail
