#!/usr/bin/env bash
# tests/kafka/test_kafka_faults.sh: the exactly-once Kafka sink while the
# broker misbehaves (tests/kafka/broker.sh; docs/kafka.md).
#
# Records are produced into `in` for about 20 s while a Kafka -> window
# -> Kafka exactly-once job runs (restarted whenever it stops, as a
# supervisor would). Meanwhile the broker is paused (SIGSTOP) longer than
# the sink's transaction timeout, so that the epoch on its way times out
# and is aborted and sent again, and later restarted (stopped with SIGTERM
# and started again on its data). A last run reads to the end; a
# read_committed reader of `out` then sees exactly the windows of a clean
# run: nothing lost, nothing twice.
#
# Env: RUNNEL, KAFKA_PRODUCE, RN_TEST_TMP.
set -uo pipefail
: "${RUNNEL:?}" "${KAFKA_PRODUCE:?}" "${RN_TEST_TMP:=/tmp}"
. "$(dirname "$0")/lib.sh"
kafka_test_start kafka_faults
kafka_topic in 3
kafka_topic out 3
kafka_topic expect 3

N=6000
TXN_TIMEOUT_MS=5000
lines() { # FIRST LAST: "KEY<TAB>JSON" lines, event time 10 ms apart
  awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
    printf "k%d\t{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}\n", i % 30, i, i % 30, i % 1000, 1700000000000 + i * 10 }'
}

window_job() { # DIR OUT-TOPIC JOB-NAME
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: $3
parallelism: 2
checkpoints: {interval: 300ms, dir: ./ckpt, retain: 3}
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
    window: {type: tumbling, size: 200ms}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out:
    type: kafka
    inputs: [per_key]
    brokers: '$addr'
    topic: $2
    key: [key]
    delivery: exactly-once
    properties: {transaction.timeout.ms: '$TXN_TIMEOUT_MS'}
YAML
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

d=$work/faults
window_job "$d" out kfaults
# The supervisor: runs the job again whenever it ends, until told to stop.
touch "$d/running"
(cd "$d" && while [ -e running ]; do
   "$RUNNEL" run job.yaml >> log 2>&1 & echo $! > job.pid
   wait $!
   echo "run ended: $?" >> runs
   sleep 0.5
 done) &
sup=$!

# The input starts once the job is up (its first checkpoint completed; a
# sanitizer build may take seconds), so that the pause below, which comes
# first, finds the job at work with epochs on their way. After a broker
# restart the consumers may wait seconds before they fetch again, and a
# pause then found no epoch to catch.
newest() { ls -d "$d"/ckpt/chk-* 2>/dev/null | grep -v inprogress | tail -1; }
for _ in $(seq 1 1200); do
  [ -n "$(newest)" ] && break
  sleep 0.1
done
check '[ -n "$(newest)" ]' "the job completes a checkpoint ($(newest | xargs -r basename))"
# A steady stream (0.3 s of event time every 0.1 s) through one producer,
# with windows of 200 ms, so that windows fire in every checkpoint's epoch:
# the pause below then catches an epoch with records on its way (with
# chunks a second apart it caught one only now and then).
(for c in $(seq 0 199); do
   lines $((c * N / 200)) $(((c + 1) * N / 200 - 1))
   sleep 0.1
 done) | "$KAFKA_PRODUCE" "$addr" in 3 2>"$work/produce.log" &
prod=$!
sleep 3
check 'kill -0 $prod 2>/dev/null' "the input is still coming when the broker is paused"
pid0=$(cat "$RN_KAFKA_DIR/pid")
kill -STOP "$pid0"
sleep $((TXN_TIMEOUT_MS / 1000 + 4))
kill -CONT "$pid0"
echo "broker paused for $((TXN_TIMEOUT_MS / 1000 + 4)) s (transaction timeout $((TXN_TIMEOUT_MS / 1000)) s)"
# A transaction open across the restart for longer than its timeout is
# aborted by the broker, which fences its producer: that run stops and the
# supervisor's next one sends the epoch again (docs/kafka.md).
sleep 2
"$BROKER" restart > "$work/restart.log" 2>&1
rc=$?
pid1=$(cat "$RN_KAFKA_DIR/pid")
check '[ $rc -eq 0 ] && [ "$pid0" != "$pid1" ]' "the broker restarted (pid $pid0 -> $pid1)"
wait $prod
rc=$?
check '[ $rc -eq 0 ]' "every input record was produced (rc $rc: $(tail -1 "$work/produce.log"))"
sleep 3
rm -f "$d/running"
kill -TERM "$(cat "$d/job.pid")" 2>/dev/null
wait $sup
echo "job runs: $(wc -l < "$d/runs") ($(sort "$d/runs" | uniq -c | tr '\n' ' '))"
check 'grep -q "aborted, sending it again" "$d/log"' \
  "a transaction caught by the pause was aborted and its epoch sent again"
check '! grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$d/log"' \
  "no sanitizer report in any run"
(cd "$d" && "$RUNNEL" run job.yaml --set sources.src.bounded=latest >> log 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "the last run reads to the end and finishes (rc $rc)"

window_job "$work/clean" expect kfaults-clean
(cd "$work/clean" && "$RUNNEL" run job.yaml --set sources.src.bounded=latest --quiet > log 2>&1)
read_back "$work/rb-out" out
rc1=$?
read_back "$work/rb-expect" expect
n=$(wc -l < "$work/rb-expect/out.jsonl" 2>/dev/null || echo 0)
check '[ $rc1 -eq 0 ]' "a read_committed reader reaches the end of every partition of out (rc $rc1)"
check '[ "$n" -ge 1000 ]' "the clean run produced windows ($n)"
check '[ -s "$work/rb-out/out.jsonl" ] && cmp -s <(sort "$work/rb-out/out.jsonl") <(sort "$work/rb-expect/out.jsonl")' \
  "after a broker restart and a pause past the transaction timeout, out holds every window once and right ($(cat "$work/rb-out/out.jsonl" 2>/dev/null | wc -l) lines, $(sort "$work/rb-out/out.jsonl" 2>/dev/null | uniq -d | wc -l) twice)"
exit $fail
