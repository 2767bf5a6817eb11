#!/usr/bin/env bash
# bench/kafka.sh: Kafka -> filter -> Kafka through runnel against the
# ceiling of plain librdkafka consume-and-produce (bench_kafka_ceiling),
# same broker, same input, one run each. Starts a broker of its own
# (tests/kafka/broker.sh), preloads a topic of 3 partitions with N JSON
# records (default 2000000), and prints one README table row per figure
# with the machine. Then end-to-end latency at a fixed rate (RATE a second,
# default 2000, for 30 s; bench_kafka_latency) through the same job with
# an at-least-once sink and with an exactly-once sink (checkpoints every
# second), after the floor: plain librdkafka passing the records on
# (bench_kafka_ceiling --relay). Build first: ./scripts/setup.sh (build/ with tests and
# benchmarks).
# Usage: bench/kafka.sh [N [RATE]] (N 0: latency only)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000000}
rate=${2:-2000}
b=build
for x in "$b/runnel" "$b/tests/kafka_produce" "$b/bench/bench_kafka_ceiling" "$b/bench/bench_kafka_latency"; do
  [ -x "$x" ] || { echo "build first: $x is missing" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/runnel-bench-kafka.XXXXXX")
export RN_KAFKA_DIR=$work/broker RN_KAFKA_WATCH_PID=$$
trap 'tests/kafka/broker.sh stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$RN_KAFKA_DIR"
addr=$(tests/kafka/broker.sh start | tail -n 1)
for t in in out-ceiling out-runnel lat-in lat-relay lat-alo lat-eo; do tests/kafka/broker.sh topic $t 3 >/dev/null; done
if [ "$n" -gt 0 ]; then
echo "preloading $n records..." >&2
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
  printf "{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}\n", i, i % 1000, i % 1000, 1700000000000 + i }' |
  "$b/tests/kafka_produce" "$addr" in 3 2>/dev/null

ceiling=$("$b/bench/bench_kafka_ceiling" "$addr" in out-ceiling "$n")
machine=$(echo "$ceiling" | grep '^machine:')
cev=$(echo "$ceiling" | grep '^RESULT events_per_sec=' | cut -d= -f2)
cmb=$(echo "$ceiling" | grep '^RESULT mb_per_sec=' | cut -d= -f2)

cat > "$work/job.yaml" <<YAML
name: bench-kafka
parallelism: 1
sources:
  src: {type: kafka, brokers: '$addr', topic: in, bounded: latest, schema: {id: int, key: string, value: int, ts: timestamp}, event_time: ts}
operators:
  keep: {type: filter, inputs: [src], where: "value >= 0"}
sinks:
  out: {type: kafka, inputs: [keep], brokers: '$addr', topic: out-runnel}
YAML
t0=$(date +%s.%N)
"$b/runnel" run "$work/job.yaml" --quiet
t1=$(date +%s.%N)
bytes=$(awk -v n="$n" 'BEGIN { b = 0; for (i = 0; i < n; i++) b += length(sprintf("{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}", i, i % 1000, i % 1000, 1700000000000 + i)); print b }')
rev=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
rmb=$(awk -v x="$bytes" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", x / 1e6 / (b - a) }')
echo "$machine"
echo "| Kafka benchmark ($n JSON records, 3 partitions, one broker on this machine) | events/s | MB/s | of the ceiling |"
echo "| --- | --- | --- | --- |"
echo "| plain librdkafka consume -> produce (ceiling) | $(awk -v v="$cev" 'BEGIN { printf "%.2f M", v / 1e6 }') | $cmb | 100% |"
echo "| runnel: kafka -> filter -> kafka (at-least-once, parallelism 1, wall time of \`runnel run\`) | $(awk -v v="$rev" 'BEGIN { printf "%.2f M", v / 1e6 }') | $rmb | $(awk -v a="$rev" -v c="$cev" 'BEGIN { printf "%.0f%%", 100 * a / c }') |"
fi

# ---- latency at a fixed rate -------------------------------------------------
latency() { # DELIVERY OUT-TOPIC EXTRA-TOP-LEVEL
  mkdir -p "$work/lat-$1"
  cat > "$work/lat-$1/job.yaml" <<YAML
name: bench-latency-$1
parallelism: 1
$3
sources:
  src: {type: kafka, brokers: '$addr', topic: lat-in, start: latest, schema: {id: int, key: string, value: int, ts: timestamp, sent_us: int}, event_time: ts}
operators:
  keep: {type: filter, inputs: [src], where: "value >= 0"}
sinks:
  out: {type: kafka, inputs: [keep], brokers: '$addr', topic: $2, delivery: $1}
YAML
  if [ "$1" = relay ]; then # the floor: plain librdkafka passing records on
    "$b/bench/bench_kafka_ceiling" "$addr" lat-in "$2" 1000000000 --relay 40 > /dev/null &
  else
    (cd "$work/lat-$1" && exec "$b_abs/runnel" run job.yaml --quiet) &
  fi
  local job=$!
  sleep 3 # the job's consumer and producer connect
  last=$("$b/bench/bench_kafka_latency" "$addr" lat-in "$2" "$rate" 30)
  kill -TERM $job 2>/dev/null; wait $job 2>/dev/null || true
  echo "$last" | grep -v '^RESULT' >&2
  res() { echo "$last" | grep "^RESULT $1=" | cut -d= -f2; }
}
b_abs=$(cd "$b" && pwd)
echo
echo "| Kafka -> filter -> Kafka latency ($rate records/s, 30 s, 3 partitions) | p50 | p99 | max | came back |"
echo "| --- | --- | --- | --- | --- |"
latency relay lat-relay ""
echo "| plain librdkafka consume -> produce (the floor; linger.ms 1 as the sink) | $(res p50_ms) ms | $(res p99_ms) ms | $(res max_ms) ms | $(res seen) of $(res sent) |"
latency at-least-once lat-alo ""
echo "| at-least-once (no checkpoints) | $(res p50_ms) ms | $(res p99_ms) ms | $(res max_ms) ms | $(res seen) of $(res sent) |"
latency exactly-once lat-eo "checkpoints: {interval: 1s, dir: ./ckpt}"
echo "| exactly-once, checkpoints every 1 s (read_committed) | $(res p50_ms) ms | $(res p99_ms) ms | $(res max_ms) ms | $(res seen) of $(res sent) |"
[ "$n" -gt 0 ] || echo "$last" | grep '^machine:'
