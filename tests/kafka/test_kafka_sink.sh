#!/usr/bin/env bash
# tests/kafka/test_kafka_sink.sh: the kafka sink (at-least-once) against a
# real broker (tests/kafka/broker.sh), read back with the kafka source.
#
# - Round trip: datagen -> kafka sink (3 partitions, keyed) -> kafka
#   source -> file: every record once, each key in one partition, the
#   key as the message key.
# - At least once: a job killed with SIGKILL twice while it writes, and
#   resumed, loses nothing (records may come twice).
# - Dead letters: a kafka source's bad records (on_error: dead-letter),
#   wired into the sink's `dead_letters`, reach their topic with the
#   reason, topic, partition and offset in headers, the good records the
#   output; with both deliveries (exactly-once: in the same transactions).
# (exactly-once: test_kafka_eo.sh)
#
# Env: RUNNEL, RN_TEST_TMP.
set -uo pipefail
: "${RUNNEL:?}" "${KAFKA_PRODUCE:?}" "${RN_TEST_TMP:=/tmp}"
. "$(dirname "$0")/lib.sh"
kafka_test_start kafka_sink
kafka_topic out 3
kafka_topic alo 3
kafka_topic mixed 2
for t in good-at-least-once dlq-at-least-once good-exactly-once dlq-exactly-once; do kafka_topic $t 2; done

read_back() { # DIR TOPIC: the topic's records with their key and partition
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: readback
parallelism: 2
sources:
  src:
    type: kafka
    brokers: '$addr'
    topic: $2
    bounded: latest
    schema: {id: int, key: string, value: int, ts: timestamp}
    metadata: {key: mkey, partition: p}
    event_time: ts
    watermark: {max_out_of_orderness: 1h}
sinks:
  out: {type: file, inputs: [src], path: ./out.jsonl}
YAML
  (cd "$1" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
}
write_job() { # DIR TOPIC EVENTS RATE EXTRA-TOP-LEVEL
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: kwrite
parallelism: 2
$5
sources:
  gen: {type: datagen, generator: sequence, events: $3, rate: $4, keys: 100, event_time: ts}
sinks:
  out: {type: kafka, inputs: [gen], brokers: '$addr', topic: $2, key: [key]}
YAML
}

# ---- round trip ---------------------------------------------------------------
write_job "$work/w" out 5000 0 ""
(cd "$work/w" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "datagen -> kafka sink finishes (rc $rc)"
read_back "$work/r" out
n=$(wc -l < "$work/r/out.jsonl")
ids=$(grep -o '"id":[0-9]*' "$work/r/out.jsonl" | sort -u | wc -l)
check '[ "$n" -eq 5000 ] && [ "$ids" -eq 5000 ]' "5000 records written, read back once each ($ids ids in $n)"
spread=$(grep -o '"key":"[^"]*".*"p":[0-9]*' "$work/r/out.jsonl" | sed 's/"key":"\([^"]*\)".*"p":\([0-9]*\)/\1 \2/' | sort -u | awk '{print $1}' | uniq -d | wc -l)
parts=$(grep -o '"p":[0-9]*' "$work/r/out.jsonl" | sort -u | wc -l)
check '[ "$spread" -eq 0 ] && [ "$parts" -eq 3 ]' "each key in one partition, keys over all 3 partitions ($spread keys split)"
mism=$(grep -vc '"key":"\([^"]*\)".*"mkey":"\1"' "$work/r/out.jsonl")
check '[ "$mism" -eq 0 ]' "the message key is the key field ($mism differ)"

# ---- at least once across SIGKILLs --------------------------------------------
d=$work/alo
write_job "$d" alo 20000 8000 "checkpoints: {interval: 200ms, dir: ./ckpt}"
for k in 1 2; do
  before=$(newest_checkpoint "$d")
  (cd "$d" && exec "$RUNNEL" run job.yaml >> log 2>&1) &
  pid=$!; wait_checkpoint "$d" "$before"; kill -9 $pid; wait $pid 2>/dev/null
done
(cd "$d" && "$RUNNEL" run job.yaml >> log 2>&1)
rc=$?
check '[ $rc -eq 0 ] && grep -q "resuming from checkpoint" "$d/log"' "killed twice, resumed, finished (rc $rc)"
read_back "$work/alo-r" alo
ids=$(grep -o '"id":[0-9]*' "$work/alo-r/out.jsonl" | sort -u | wc -l)
n=$(wc -l < "$work/alo-r/out.jsonl")
check '[ "$ids" -eq 20000 ]' "no record lost ($ids of 20000 ids; $((n - ids)) sent twice)"

# ---- dead letters ---------------------------------------------------------------
# 300 records into `mixed`, every tenth not JSON.
awk 'BEGIN { for (i = 0; i < 300; i++)
  if (i % 10 == 3) printf "k%d\tnot json %d\n", i % 7, i
  else printf "k%d\t{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}\n", i % 7, i, i % 7, i, 1700000000000 + i }' |
  "$KAFKA_PRODUCE" "$addr" mixed 2 2>/dev/null
for delivery in at-least-once exactly-once; do
  d=$work/dead-$delivery
  mkdir -p "$d"
  cat > "$d/job.yaml" <<YAML
name: dead-$delivery
checkpoints: {interval: 200ms, dir: ./ckpt}
sources:
  src:
    type: kafka
    brokers: '$addr'
    topic: mixed
    bounded: latest
    schema: {id: int, key: string, value: int, ts: timestamp}
    on_error: dead-letter
sinks:
  out:
    type: kafka
    inputs: [src, src.errors]
    brokers: '$addr'
    topic: good-$delivery
    delivery: $delivery
    dead_letters: {inputs: [src.errors], topic: dlq-$delivery}
YAML
  (cd "$d" && "$RUNNEL" run job.yaml > log 2>&1)
  rc=$?
  check '[ $rc -eq 0 ]' "$delivery: the job with dead letters runs (rc $rc)"
  mkdir -p "$d/rb"
  cat > "$d/rb/job.yaml" <<YAML
name: readback
sources:
  good: {type: kafka, brokers: '$addr', topic: good-$delivery, bounded: latest, format: raw, schema: {line: string}}
  dead: {type: kafka, brokers: '$addr', topic: dlq-$delivery, bounded: latest, format: raw, schema: {line: string}, metadata: {headers: h}}
sinks:
  g: {type: file, inputs: [good], path: ./good.jsonl}
  x: {type: file, inputs: [dead], path: ./dead.jsonl}
YAML
  # A read_committed reader's end is the last stable offset, and Kafka
  # writes a committed transaction's markers after EndTxn has answered:
  # right after the job, a partition may not show its last transaction yet.
  # Read again (a few times at most) until the counts stop growing short of
  # the whole; lost or doubled records still fail below.
  for _ in 1 2 3 4 5 6; do
    (cd "$d/rb" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
    good=$(wc -l < "$d/rb/good.jsonl" 2>/dev/null || echo 0)
    dead=$(wc -l < "$d/rb/dead.jsonl" 2>/dev/null || echo 0)
    [ "$good" -ge 270 ] && [ "$dead" -ge 30 ] && break
    sleep 0.5
  done
  check '[ "$good" -eq 270 ] && [ "$dead" -eq 30 ]' "$delivery: 270 good records in the output, 30 dead letters in their topic ($good, $dead)"
  # The headers field is a JSON object in a string: its quotes escaped.
  hdr_ok=1
  for name in reason topic partition offset; do
    [ "$(grep -cF "\\\"$name\\\":" "$d/rb/dead.jsonl" 2>/dev/null)" = 30 ] || hdr_ok=0
  done
  [ "$(grep -cF '\"topic\":\"mixed\"' "$d/rb/dead.jsonl" 2>/dev/null)" = 30 ] || hdr_ok=0
  check '[ $hdr_ok -eq 1 ] && grep -q "not json 13" "$d/rb/dead.jsonl"' \
    "$delivery: each dead letter is the raw record with reason, topic, partition and offset headers ($(head -n 1 "$d/rb/dead.jsonl" 2>/dev/null | cut -c1-300))"
done

exit $fail
