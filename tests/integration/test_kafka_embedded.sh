#!/usr/bin/env bash
# tests/integration/test_kafka_embedded.sh: `brokers: embedded`, the
# in-process Kafka cluster (connectors/kafka_embedded.c), with no broker.
#
# - A job that fills an embedded topic from a datagen through an
#   at-least-once Kafka sink and reads it back with a bounded Kafka source
#   into windows: the bounded read ends once the job's own sink finished,
#   and the windows equal the ones worked out here with awk.
# (A reader that falls behind the cluster's bounded tail stops the job
# with "records lost": unit.kafka_embedded, case tail, makes that certain
# by slowing the broker's answers; a race of writer and reader here would
# depend on the machine's speed.)
# - An exactly-once sink on the embedded cluster: transactions, the commit
#   log and checkpoints work (the output itself is checked against a real
#   broker in tests/kafka/).
# - The quickstart's Kafka job runs.
#
# Env: RUNNEL (the binary), RN_SRC (the source tree), RN_TEST_TMP.
set -u
RUNNEL=${RUNNEL:-$(dirname "$0")/../../build/runnel}
RN_SRC=${RN_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
TMP=${RN_TEST_TMP:-/tmp}/kafka_embedded.$$
rm -rf "$TMP"
mkdir -p "$TMP"
cd "$TMP" || exit 1
fail=0
check() { # CONDITION MESSAGE
  if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi
}

roundtrip_job() { # EVENTS
  cat > job.yaml <<YAML
name: embedded-roundtrip
parallelism: 2
sources:
  gen:
    type: datagen
    parallelism: 1
    generator: sequence
    events: $1
    keys: 5
    interval: 1ms
    event_time: ts
  clicks:
    type: kafka
    brokers: embedded
    topic: clicks
    bounded: latest
    schema: {id: int, key: string, value: int, ts: timestamp}
    event_time: ts
operators:
  per_key:
    type: window_aggregate
    inputs: [clicks]
    key: [key]
    window: {type: tumbling, size: 5s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  to_kafka: {type: kafka, parallelism: 1, inputs: [gen], brokers: embedded, topic: clicks, format: json, key: [key]}
  out: {type: file, inputs: [per_key], path: ./out.jsonl}
YAML
}

# ---- round trip -------------------------------------------------------------
n=20000
roundtrip_job $n
"$RUNNEL" run job.yaml > log 2>&1
rc=$?
check '[ $rc -eq 0 ]' "the round trip through the embedded cluster finishes (rc $rc)"
check 'grep -q "$((2 * n)) records in" log' "every generated record is read back ($(grep -o '[0-9]* records in' log))"
# Event i: key k(i % 5), value i % 1000, time 1700000000000 + i ms.
awk -v n=$n 'BEGIN {
  for (i = 0; i < n; i++) { k = "k" (i % 5); w = int(i / 5000); c[k, w]++; s[k, w] += i % 1000 }
  for (ks in c) { split(ks, p, SUBSEP); ws = 1700000000000 + p[2] * 5000
    printf "{\"key\":\"%s\",\"window_start\":%.0f,\"window_end\":%.0f,\"n\":%d,\"total\":%d}\n", p[1], ws, ws + 5000, c[ks], s[ks] } }' |
  sort > want.jsonl
sort out.jsonl > got.jsonl 2>/dev/null
check 'cmp -s want.jsonl got.jsonl' "the windows equal the expected ones ($(wc -l < got.jsonl) of $(wc -l < want.jsonl))"

# ---- exactly-once sink --------------------------------------------------------
mkdir -p "$TMP/eo" && cd "$TMP/eo" || exit 1
cat > job.yaml <<YAML
name: embedded-eo
checkpoints: {interval: 300ms, dir: ./ck}
sources:
  gen: {type: datagen, generator: sequence, events: 6000, rate: 5000, keys: 5, interval: 1ms, event_time: ts}
sinks:
  k: {type: kafka, inputs: [gen], brokers: embedded, topic: out, format: json, delivery: exactly-once, key: [key]}
YAML
"$RUNNEL" run job.yaml > log 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "checkpoints: [1-9][0-9]* completed, 0 failed" log' \
  "an exactly-once sink commits its transactions on the embedded cluster (rc $rc; $(grep -o 'checkpoints: [0-9]* completed, [0-9]* failed' log))"

# ---- the quickstart's Kafka job -------------------------------------------------
mkdir -p "$TMP/qs" && cd "$TMP/qs" || exit 1
"$RUNNEL" run "$RN_SRC/examples/quickstart/kafka.yaml" > out 2> log
rc=$?
check '[ $rc -eq 0 ] && [ "$(grep -c window_start out)" -gt 0 ]' \
  "examples/quickstart/kafka.yaml runs and prints windows (rc $rc)"

# ---- ${NAME} in properties ------------------------------------------------------
# A property's value may come from the environment, so that secrets stay
# out of job files: the value reaches librdkafka (a bad one is refused by
# librdkafka, naming it), and an unset variable is refused at its line.
env_job() {
  cat > env.yaml <<'YAML'
name: embedded-env
sources:
  gen: {type: datagen, generator: sequence, events: 100, keys: 5, event_time: ts}
sinks:
  out:
    type: kafka
    inputs: [gen]
    brokers: embedded
    topic: env
    format: json
    properties: {security.protocol: "${RN_TEST_PROTOCOL}"}
YAML
}
env_job
RN_TEST_PROTOCOL=plaintext "$RUNNEL" run env.yaml --quiet > env_ok.log 2>&1
rc=$?
check '[ $rc -eq 0 ]' "a property from the environment (security.protocol=\${RN_TEST_PROTOCOL}=plaintext) is accepted (rc $rc: $(head -c 200 env_ok.log))"
RN_TEST_PROTOCOL=carrier-pigeon "$RUNNEL" run env.yaml --quiet > env_bad.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "carrier-pigeon" env_bad.log' \
  "the variable's value is what librdkafka gets: a bad one is refused with it ($(head -1 env_bad.log | cut -c1-200))"
env -u RN_TEST_PROTOCOL "$RUNNEL" run env.yaml --quiet > env_unset.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "env.yaml:[0-9]*:[0-9]*: .*needs the environment variable RN_TEST_PROTOCOL, which is not set" env_unset.log' \
  "an unset variable is refused at its line ($(head -1 env_unset.log | cut -c1-200))"

[ $fail -eq 0 ] && cd / && rm -rf "$TMP"
exit $fail
