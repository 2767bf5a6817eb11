#!/usr/bin/env bash
# tests/kafka/test_kafka_source.sh: the kafka source against a real broker
# (tests/kafka/broker.sh).
#
# - Every record read once: a topic of 3 partitions read by 2 instances
#   (bounded: latest) through a window gives what the same lines read from
#   a file give.
# - Offsets in checkpoints: a job stopped with SIGTERM (final checkpoint)
#   and started again after more records were written continues where it
#   stopped: every id once, none missing; a bad record goes to the
#   dead-letter output with its TOPIC/PARTITION@OFFSET.
# - Watermarks per partition: partitions far apart in time lose no window
#   with no room for disorder; an empty partition stops holding windows
#   back once idle.
# - Partitions added while running are read, from their start.
# - Record metadata (key, timestamp, partition, offset, headers) as fields;
#   format raw.
# - A missing topic and a property that runs a command are refused with
#   clear messages.
#
# Env: RUNNEL, KAFKA_PRODUCE (tests/kafka/kafka_produce.c built),
#      RN_TEST_TMP.
set -uo pipefail
: "${RUNNEL:?}" "${KAFKA_PRODUCE:?}" "${KAFKA_COMMITTED:?}" "${RN_TEST_TMP:=/tmp}"
. "$(dirname "$0")/lib.sh"
kafka_test_start kafka_source
kafka_topic events 3
kafka_topic more 3

lines() { # FIRST LAST: JSON records of ids FIRST..LAST
  awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
    printf "{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}\n", i, i % 50, i % 1000, 1700000000000 + i * 10 }'
}
schema='{id: int, key: string, value: int, ts: timestamp}'

# ---- every record once ----------------------------------------------------
lines 0 2999 > "$work/events.jsonl"
"$KAFKA_PRODUCE" "$addr" events 3 < "$work/events.jsonl" 2>/dev/null
check '[ $? -eq 0 ]' "3000 records written to events (3 partitions)"

window_job() { # DIR SOURCE-YAML
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: ksrc
parallelism: 2
sources:
  src: $2
operators:
  per_key:
    type: window_aggregate
    inputs: [src]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: file, inputs: [per_key], path: ./out.jsonl}
YAML
}
# A late record would be dropped: the watermark waits for the slowest
# partition only once per-partition watermarks exist, so it is
# held back by an hour here and the bounded end fires every window.
window_job "$work/file" "{type: file, path: '$work/events.jsonl', schema: $schema, event_time: ts, watermark: {max_out_of_orderness: 1h}}"
(cd "$work/file" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
window_job "$work/kafka" "{type: kafka, brokers: '$addr', topic: events, bounded: latest, schema: $schema, event_time: ts, watermark: {max_out_of_orderness: 1h}}"
(cd "$work/kafka" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "bounded kafka job finishes (rc $rc)"
check '[ -s "$work/file/out.jsonl" ]' "the file job produced windows ($(wc -l < "$work/file/out.jsonl" 2>/dev/null))"
check 'cmp -s <(sort "$work/file/out.jsonl") <(sort "$work/kafka/out.jsonl")' \
  "2 instances reading 3 partitions give the file source's windows"

# ---- watermarks per partition ---------------------------------------------
# One partition holds the later half of the time range, the other the
# earlier half (both ways round: which partition librdkafka hands out
# first is its business); one instance reads both, with no room for
# disorder (max_out_of_orderness 0). A watermark over all records makes
# the earlier partition's records late (dropped) when the later one comes
# first; per partition, none is.
lines 0 2999 > "$work/skew.jsonl"
skew_job() { # DIR SOURCE-YAML
  window_job "$1" "$2"
  sed -i 's/^parallelism: 2/parallelism: 1/' "$1/job.yaml"
}
skew_job "$work/skew-file" "{type: file, path: '$work/skew.jsonl', schema: $schema, event_time: ts}"
(cd "$work/skew-file" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
for later in 0 1; do
  "$BROKER" topic skew$later 2 >/dev/null || { echo "FAIL: topic skew$later"; fail=1; }
  sed -n '1501,3000p' "$work/skew.jsonl" | "$KAFKA_PRODUCE" "$addr" skew$later 1 $later 2>/dev/null
  sed -n '1,1500p' "$work/skew.jsonl" | "$KAFKA_PRODUCE" "$addr" skew$later 1 $((1 - later)) 2>/dev/null
  skew_job "$work/skew-kafka$later" "{type: kafka, brokers: '$addr', topic: skew$later, bounded: latest, schema: $schema, event_time: ts}"
  (cd "$work/skew-kafka$later" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
  check 'cmp -s <(sort "$work/skew-file/out.jsonl") <(sort "$work/skew-kafka$later/out.jsonl")' \
    "partitions far apart in time (the later in $later), no disorder allowed: no window lost ($(wc -l < "$work/skew-kafka$later/out.jsonl") of $(wc -l < "$work/skew-file/out.jsonl"))"
done

# An empty partition holds the watermark back until it is idle
# (watermark.idle_timeout): then windows fire on the other partitions
# (seen in the output a checkpoint commits).
"$BROKER" topic idle 3 >/dev/null || { echo "FAIL: topic idle"; fail=1; }
lines 0 1999 | "$KAFKA_PRODUCE" "$addr" idle 2 0 2>/dev/null
d=$work/idle
window_job "$d" "{type: kafka, brokers: '$addr', topic: idle, schema: $schema, event_time: ts, watermark: {idle_timeout: 1s}}"
sed -i 's/^parallelism: 2/parallelism: 1\ncheckpoints: {interval: 200ms, dir: .\/ckpt}/' "$d/job.yaml"
(cd "$d" && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
wait_lines "$d/out.jsonl" 1 20
kill -TERM $pid
wait $pid
check '[ -s "$d/out.jsonl" ]' "an empty partition idle after 1 s: windows fire ($(wc -l < "$d/out.jsonl" 2>/dev/null || echo 0) lines)"
# bounded: an empty partition is read at once (the job ends).
d=$work/idle-bounded
window_job "$d" "{type: kafka, brokers: '$addr', topic: idle, bounded: latest, schema: $schema, event_time: ts, watermark: {max_out_of_orderness: 1h}}"
(cd "$d" && timeout 60 "$RUNNEL" run job.yaml --quiet > log 2>&1)
rc=$?
check '[ $rc -eq 0 ] && [ "$(grep -o "\"n\":[0-9]*" "$d/out.jsonl" | cut -d: -f2 | awk "{ s += \$1 } END { print s }")" -eq 2000 ]' \
  "bounded with an empty partition: ends, every record counted (rc $rc)"

# Partitions added while the job runs are found (partition_discovery) and
# read from their start.
"$BROKER" topic grow 1 >/dev/null || { echo "FAIL: topic grow"; fail=1; }
lines 0 999 | "$KAFKA_PRODUCE" "$addr" grow 1 0 2>/dev/null
d=$work/grow
mkdir -p "$d"
cat > "$d/job.yaml" <<YAML
name: kgrow
parallelism: 2
checkpoints: {interval: 200ms, dir: ./ckpt}
sources:
  src: {type: kafka, brokers: '$addr', topic: grow, partition_discovery: 500ms, schema: $schema, event_time: ts}
sinks:
  out: {type: file, inputs: [src], path: ./out.jsonl}
YAML
(cd "$d" && RUNNEL_LOG=info exec "$RUNNEL" run job.yaml > log 2>&1) &
pid=$!
wait_lines "$d/out.jsonl" 1000 20
"$BROKER" partitions grow 3 >/dev/null
lines 1000 2999 | "$KAFKA_PRODUCE" "$addr" grow 2 1 2>/dev/null
wait_lines "$d/out.jsonl" 3000 30
kill -TERM $pid
wait $pid
ids=$(grep -o '"id":[0-9]*' "$d/out.jsonl" | sort -u | wc -l)
check '[ "$ids" -eq 3000 ] && [ "$(wc -l < "$d/out.jsonl")" -eq 3000 ]' \
  "two partitions added while running are read, every record once ($ids ids)"
check 'grep -q "new partition grow/1" "$d/log" && grep -q "new partition grow/2" "$d/log"' \
  "the new partitions are reported"

# Metadata as fields: key, the record's timestamp (here the event time),
# partition, offset, headers; CSV values (no header: the declared order).
"$BROKER" topic meta 1 >/dev/null || { echo "FAIL: topic meta"; fail=1; }
printf 'user%d\t%d,k%d\n' 0 0 0 1 1 1 2 2 2 | "$KAFKA_PRODUCE" "$addr" meta 1 2>/dev/null
d=$work/meta
mkdir -p "$d"
cat > "$d/job.yaml" <<YAML
name: kmeta
sources:
  src:
    type: kafka
    brokers: '$addr'
    topic: meta
    bounded: latest
    format: csv
    schema: {id: int, name: string}
    metadata: {key: k, timestamp: kts, partition: p, offset: o, headers: h}
    event_time: kts
sinks:
  out: {type: file, inputs: [src], path: ./out.jsonl}
YAML
(cd "$d" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
line=$(grep -F '"id":2,' "$d/out.jsonl")
check '[[ "$line" == '"'"'{"id":2,"name":"k2","k":"user2","kts":1'"'"'*'"'"',"p":0,"o":2,"h":"{\"n\":\"2\"}"}'"'"' ]] && [ "$(wc -l < "$d/out.jsonl")" -eq 3 ]' \
  "key, timestamp (as event time), partition, offset and headers as fields, CSV values"

# format: raw: the value as it is, in the schema's one string field.
d=$work/raw
mkdir -p "$d"
cat > "$d/job.yaml" <<YAML
name: kraw
sources:
  src: {type: kafka, brokers: '$addr', topic: meta, bounded: latest, format: raw, schema: {line: string}, metadata: {key: k}}
sinks:
  out: {type: file, inputs: [src], path: ./out.jsonl}
YAML
(cd "$d" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
check 'grep -qxF "{\"line\":\"1,k1\",\"k\":\"user1\"}" "$d/out.jsonl" && [ "$(wc -l < "$d/out.jsonl")" -eq 3 ]' \
  "format raw: the value as it is"

# ---- offsets in checkpoints -----------------------------------------------
d=$work/resume
mkdir -p "$d"
pass_job() { # BOUNDED-YAML
  cat > "$d/job.yaml" <<YAML
name: kresume
parallelism: 2
checkpoints: {interval: 200ms, dir: ./ckpt}
sources:
  src: {type: kafka, brokers: '$addr', topic: more, start: earliest, on_error: dead-letter, schema: $schema, event_time: ts$1}
sinks:
  out: {type: file, inputs: [src], path: ./out.jsonl}
  bad: {type: file, inputs: [src.errors], path: ./errors.jsonl}
YAML
}
lines 0 1999 | "$KAFKA_PRODUCE" "$addr" more 3 2>/dev/null
pass_job ""
(cd "$d" && exec "$RUNNEL" run job.yaml > log 2>&1) &
pid=$!
wait_lines "$d/out.jsonl" 2000 20
kill -TERM $pid
wait $pid
rc=$?
check '[ $rc -eq 0 ]' "the unbounded job stops cleanly on SIGTERM (rc $rc)"
check 'grep -q "stopped at checkpoint" "$d/log"' "it stops at a checkpoint"
first=$(wc -l < "$d/out.jsonl")
check '[ "$first" -eq 2000 ]' "the first run emitted the 2000 records ($first)"
{ lines 2000 2999; echo 'not json'; lines 3000 3499; } | "$KAFKA_PRODUCE" "$addr" more 3 2>/dev/null
pass_job ", bounded: latest"
(cd "$d" && "$RUNNEL" run job.yaml >> log 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "the second run (bounded) finishes (rc $rc)"
check 'grep -q "resuming from checkpoint" "$d/log"' "it resumes from the checkpoint"
ids=$(grep -o '"id":[0-9]*' "$d/out.jsonl" | sort | uniq | wc -l)
all=$(wc -l < "$d/out.jsonl")
check '[ "$ids" -eq 3500 ] && [ "$all" -eq 3500 ]' "every id once across the two runs ($ids ids in $all lines)"
check 'grep -q "\"location\":\"more/[0-2]@[0-9]*\"" "$d/errors.jsonl" && [ "$(wc -l < "$d/errors.jsonl")" -eq 1 ]' \
  "the bad record is a dead letter with its topic/partition@offset"

# ---- offsets to the consumer group, only once a checkpoint completed ----------
# The group is for monitoring (lag); the job never reads it back. Before the
# first checkpoint completes nothing is committed, though every record was
# read; a savepoint, then a stop, each commit the positions they hold.
d=$work/group
mkdir -p "$d"
gport=$((20000 + RANDOM % 20000))
cat > "$d/job.yaml" <<YAML
name: kgroup
parallelism: 2
checkpoints: {interval: 1h, dir: ./ckpt}
rest: {listen: 127.0.0.1:$gport}
sources:
  src: {type: kafka, brokers: '$addr', topic: grp, group: watchers, start: earliest, schema: $schema, event_time: ts}
sinks:
  out: {type: file, inputs: [src], path: ./out.jsonl}
YAML
kafka_topic grp 3
committed() { "$KAFKA_COMMITTED" "$addr" watchers grp 3 2>> "$d/committed.err" | awk '{ printf "%s%s", sep, $2; sep = " " }'; }
wait_committed() { # WANT: waits up to 60 s (the commit is asynchronous)
  for _ in $(seq 300); do [ "$(committed)" = "$1" ] && return 0; sleep 0.2; done
  return 1
}
records_in() { curl -sf "http://127.0.0.1:$gport/status" | grep -o '"records_in": *[0-9]*' | grep -o '[0-9]*$'; }
lines 0 299 | "$KAFKA_PRODUCE" "$addr" grp 3 2>/dev/null
# Not under timeout(1): it passes a SIGTERM on twice (to the child and to its
# group), and a second signal cancels the job rather than stopping it.
(cd "$d" && exec "$RUNNEL" run job.yaml > log 2>&1) &
pid=$!
for _ in $(seq 600); do [ "$(records_in)" = 300 ] && break; sleep 0.2; done
check '[ "$(records_in)" = 300 ]' "the job read the 300 records (status says $(records_in))"
sleep 1
check '[ "$(committed)" = "-1 -1 -1" ]' "nothing is committed to the group before a checkpoint completes ($(committed))"
"$RUNNEL" savepoint "127.0.0.1:$gport" > "$d/sp.out" 2>&1
check 'wait_committed "100 100 100"' "a completed savepoint commits its positions to the group ($(committed))"
lines 300 599 | "$KAFKA_PRODUCE" "$addr" grp 3 2>/dev/null
for _ in $(seq 600); do [ "$(records_in)" = 600 ] && break; sleep 0.2; done
sleep 1
check '[ "$(records_in)" = 600 ] && [ "$(committed)" = "100 100 100" ]' \
  "records read after it move nothing until the next checkpoint ($(records_in) read, committed $(committed))"
kill -TERM $pid
wait $pid
rc=$?
check '[ $rc -eq 0 ] && wait_committed "200 200 200"' "the final checkpoint of a stop commits the end (rc $rc, $(committed))"

# ---- a job that fills a topic and reads it back: the examples on the broker ----
# A bounded source takes the end of a topic that the job's own sinks write
# only once they finished (kafka_writers.c). examples/wordcount and
# examples/iot, given this broker, give what they give on the embedded cluster.
if [ -n "${RN_EXAMPLES:-}" ] && [ -n "${RN_SRC:-}" ]; then
  kafka_topic lines 3
  kafka_topic word-counts 3
  kafka_topic readings 3
  kafka_topic alerts 3
  ex() { # NAME YAML LIBRARY-OP SETS...
    local name=$1 yaml=$2 op=$3
    shift 3
    (cd "$RN_SRC" && "$RUNNEL" run "examples/$yaml" --quiet --set "operators.$op.library=$RN_EXAMPLES/lib${yaml%%/*}.so" "$@" > "$work/$name.log" 2>&1)
  }
  ex wc-emb wordcount/wordcount.yaml words --set "sinks.file.path=$work/wc-emb.jsonl"
  ex wc-real wordcount/wordcount.yaml words --set "sinks.file.path=$work/wc-real.jsonl" \
    --set "sources.lines.brokers=$addr" --set "sinks.to_kafka.brokers=$addr" --set "sinks.out.brokers=$addr"
  rc=$?
  check '[ $rc -eq 0 ] && [ -s "$work/wc-emb.jsonl" ] && [ "$(sort "$work/wc-real.jsonl")" = "$(sort "$work/wc-emb.jsonl")" ]' \
    "examples/wordcount against the broker: the counts of the embedded run ($(wc -l < "$work/wc-real.jsonl" 2>/dev/null) counts, rc $rc)"
  ex iot-emb iot/iot.yaml overheat --set "sinks.alerts_file.path=$work/al-emb.jsonl" --set "sinks.sessions_file.path=$work/se-emb.jsonl"
  ex iot-real iot/iot.yaml overheat --set "sinks.alerts_file.path=$work/al-real.jsonl" --set "sinks.sessions_file.path=$work/se-real.jsonl" \
    --set "sources.readings.brokers=$addr" --set "sinks.to_kafka.brokers=$addr" --set "sinks.alerts_topic.brokers=$addr"
  rc=$?
  check '[ $rc -eq 0 ] && [ -s "$work/al-emb.jsonl" ] && [ "$(sort "$work/al-real.jsonl")" = "$(sort "$work/al-emb.jsonl")" ] && [ "$(sort "$work/se-real.jsonl")" = "$(sort "$work/se-emb.jsonl")" ]' \
    "examples/iot against the broker: the alerts and sessions of the embedded run (rc $rc)"
  # clv, fraud and churn: the same, each job's Kafka components given
  # this broker (the topics are created here, with 3 partitions).
  for t in orders clv payments flags customer-events churn-alerts; do kafka_topic "$t" 3; done
  ex clv-emb clv/clv.yaml clv --set "sinks.clv_file.path=$work/clv-emb.jsonl"
  ex clv-real clv/clv.yaml clv --set "sinks.clv_file.path=$work/clv-real.jsonl" \
    --set "sources.orders.brokers=$addr" --set "sinks.to_kafka.brokers=$addr" --set "sinks.clv_topic.brokers=$addr"
  rc=$?
  check '[ $rc -eq 0 ] && [ -s "$work/clv-emb.jsonl" ] && [ "$(sort "$work/clv-real.jsonl")" = "$(sort "$work/clv-emb.jsonl")" ]' \
    "examples/clv against the broker: the values of the embedded run ($(wc -l < "$work/clv-real.jsonl" 2>/dev/null) updates, rc $rc)"
  ex fraud-emb fraud/fraud.yaml flag --set "sinks.flags_file.path=$work/fr-emb.jsonl"
  ex fraud-real fraud/fraud.yaml flag --set "sinks.flags_file.path=$work/fr-real.jsonl" \
    --set "sources.payments.brokers=$addr" --set "sinks.to_kafka.brokers=$addr" --set "sinks.flags_topic.brokers=$addr"
  rc=$?
  check '[ $rc -eq 0 ] && [ -s "$work/fr-emb.jsonl" ] && [ "$(sort "$work/fr-real.jsonl")" = "$(sort "$work/fr-emb.jsonl")" ]' \
    "examples/fraud against the broker: the flags of the embedded run ($(wc -l < "$work/fr-real.jsonl" 2>/dev/null) flags, rc $rc)"
  (cd "$RN_SRC" && examples/churn/gen_events.sh > "$work/churn-events.jsonl")
  ex churn-emb churn/churn.yaml score --set "sources.file.path=$work/churn-events.jsonl" --set "sinks.alerts_file.path=$work/ch-emb.jsonl"
  ex churn-real churn/churn.yaml score --set "sources.file.path=$work/churn-events.jsonl" --set "sinks.alerts_file.path=$work/ch-real.jsonl" \
    --set "sources.events.brokers=$addr" --set "sinks.to_kafka.brokers=$addr" --set "sinks.alerts_topic.brokers=$addr"
  rc=$?
  check '[ $rc -eq 0 ] && [ -s "$work/ch-emb.jsonl" ] && [ "$(sort "$work/ch-real.jsonl")" = "$(sort "$work/ch-emb.jsonl")" ]' \
    "examples/churn against the broker: the alerts of the embedded run ($(wc -l < "$work/ch-real.jsonl" 2>/dev/null) alerts, rc $rc)"
fi

# ---- refusals ---------------------------------------------------------------
window_job "$work/missing" "{type: kafka, brokers: '$addr', topic: nope, bounded: latest, schema: $schema, event_time: ts}"
(cd "$work/missing" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
rc=$?
check '[ $rc -ne 0 ] && grep -q "topic .nope. on .*Unknown topic" "$work/missing/log"' "a missing topic is refused, named (rc $rc)"
window_job "$work/cmd" "{type: kafka, brokers: '$addr', topic: events, schema: $schema, properties: {sasl.kerberos.kinit.cmd: 'touch $work/ran'}}"
(cd "$work/cmd" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
rc=$?
check '[ $rc -ne 0 ] && [ ! -e "$work/ran" ] && grep -q "job.yaml:[0-9]*:[0-9]*: .*run a command" "$work/cmd/log"' "a property that runs a command is refused at its line"
window_job "$work/cmd2" "{type: kafka, brokers: '$addr', topic: events, bounded: latest, schema: $schema, event_time: ts, properties: {sasl.kerberos.kinit.cmd: 'true'}}"
(cd "$work/cmd2" && "$RUNNEL" run job.yaml --quiet --allow-code-properties > log 2>&1)
rc=$?
check '[ $rc -eq 0 ] && ! grep -q "run a command" "$work/cmd2/log"' "--allow-code-properties lets the operator allow it (rc $rc)"
exit $fail
