#!/usr/bin/env bash
# tests/kafka/test_kafka_eo.sh: the kafka sink's `delivery: exactly-once`
# against a real broker (tests/kafka/broker.sh; docs/kafka.md).
#
# - Chaos: records are produced into `in` while a Kafka -> window ->
#   Kafka exactly-once job is killed 12 times: SIGKILL at random moments
#   and, three of the times, at the crash points of the commit path
#   (before the commit, after it, while restored epochs are sent again),
#   each checked to have been hit. The last run reads to the end. A
#   read_committed reader of `out` sees exactly the windows of a clean
#   run (none lost, none twice, none wrong), and reaches the end of every
#   partition (no transaction left open).
# - A checkpoint older than the commit log's epochs (the newest one
#   removed, as when it is damaged) is refused, naming both; with
#   --accept-duplicates the job resumes.
# - Without checkpoints, exactly-once is refused with a clear message.
#
# Env: RUNNEL, KAFKA_PRODUCE, RN_TEST_TMP.
set -uo pipefail
: "${RUNNEL:?}" "${KAFKA_PRODUCE:?}" "${RN_TEST_TMP:=/tmp}"
. "$(dirname "$0")/lib.sh"
kafka_test_start kafka_eo
kafka_topic in 3
kafka_topic out 3
kafka_topic expect 3

N=9000
lines() { # FIRST LAST: "KEY<TAB>JSON" lines, event time 10 ms apart
  awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
    printf "k%d\t{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}\n", i % 30, i, i % 30, i % 1000, 1700000000000 + i * 10 }'
}

# Kafka -> tumbling window -> Kafka. Records of a key go to one partition
# in time order, and watermarks are per partition: nothing is late, so
# the windows do not depend on when they fire.
window_job() { # DIR OUT-TOPIC JOB-NAME (the transactional.ids follow it)
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
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: kafka, inputs: [per_key], brokers: '$addr', topic: $2, key: [key], delivery: exactly-once}
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
  # An open transaction would hold read_committed back at its start: the
  # reader would not reach the end it was given.
  read_committed_stable "$1"
}

# ---- chaos ----------------------------------------------------------------------
d=$work/chaos
window_job "$d" out keo
# Produced in the background while the job is killed: 30 chunks a
# second apart.
(for c in $(seq 0 29); do
   lines $((c * N / 30)) $(((c + 1) * N / 30 - 1)) | "$KAFKA_PRODUCE" "$addr" in 3 2>/dev/null
   sleep 1
 done) &
prod=$!
run_bg() { (cd "$d" && exec env "$@" "$RUNNEL" run job.yaml >> log 2>&1) & pid=$!; }
hits=""
for k in $(seq 1 12); do
  point=""
  case $k in
    3) point=kafka.before_commit ;;
    4) point=kafka.mid_resend ;;   # the epoch left uncommitted by run 3
    8) point=kafka.after_commit ;;
  esac
  if [ -n "$point" ]; then
    run_bg RN_CRASH_AT=$point
    for _ in $(seq 1200); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    kill -9 $pid 2>/dev/null
    wait $pid; st=$?
    [ $st -eq 77 ] && hits="$hits $point"
  else
    before=$(newest_checkpoint "$d")
    run_bg
    # The kills come after the run's first checkpoint (a start runs
    # init_transactions and reads the commit log: seconds on a loaded
    # machine), at a random moment while records flow and epochs commit.
    wait_checkpoint "$d" "$before"
    sleep "$(awk -v s=$RANDOM 'BEGIN { printf "%.2f", (s % 200) / 100 }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
  fi
done
wait $prod
check '[ "$(echo $hits | wc -w)" -eq 3 ]' "the crash points of the commit path were hit:$hits"
# Under the sanitizers a report stops the run at once (halt_on_error):
# none may appear in any of the runs.
check '! grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$d/log"' \
  "no sanitizer report in the killed runs"
check 'grep -q "[1-9][0-9]* sent again" "$d/log"' "a restart sent an uncommitted epoch again"
(cd "$d" && "$RUNNEL" run job.yaml --set sources.src.bounded=latest >> log 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "the last run reads to the end and finishes (rc $rc)"
resumes=$(grep -o "resuming from checkpoint [0-9]*" "$d/log" | sort -u | wc -l)
check '[ "$resumes" -ge 6 ]' "the runs made progress between kills ($resumes different checkpoints resumed)"

# A clean run of the same job into `expect`.
window_job "$work/clean" expect keo-clean
(cd "$work/clean" && "$RUNNEL" run job.yaml --set sources.src.bounded=latest --quiet > log 2>&1)
read_back "$work/rb-out" out
rc1=$?
read_back "$work/rb-expect" expect
n=$(wc -l < "$work/rb-expect/out.jsonl" 2>/dev/null || echo 0)
check '[ $rc1 -eq 0 ]' "a read_committed reader reaches the end of every partition of out (rc $rc1)"
check '[ "$n" -ge 300 ]' "the clean run produced windows ($n)"
check '[ -s "$work/rb-out/out.jsonl" ] && cmp -s <(sort "$work/rb-out/out.jsonl") <(sort "$work/rb-expect/out.jsonl")' \
  "after 12 kills, out holds every window once and right ($(cat "$work/rb-out/out.jsonl" 2>/dev/null | wc -l) lines, $(sort "$work/rb-out/out.jsonl" 2>/dev/null | uniq -d | wc -l) twice)"

# ---- an older checkpoint than the commit log's ------------------------------------
# The chaos job's newest checkpoints removed: the one left is older than
# what the sink committed.
ckpts=$(ls "$d/ckpt" | grep -E '^chk-[0-9]+$' | sort)
newest=$(echo "$ckpts" | tail -n 1)
oldest=$(echo "$ckpts" | tail -n 3 | head -n 1) # the retained ones: the newest 3
for c in $ckpts; do [ "$c" != "$oldest" ] && rm -rf "$d/ckpt/$c"; done
(cd "$d" && "$RUNNEL" run job.yaml --set sources.src.bounded=latest > fallback.log 2>&1)
rc=$?
check '[ $rc -ne 0 ] && grep -q "newer than the checkpoint being restored" "$d/fallback.log" && grep -q -- "--accept-duplicates" "$d/fallback.log"' \
  "resuming $oldest after $newest is refused, naming both epochs (rc $rc)"
(cd "$d" && "$RUNNEL" run job.yaml --set sources.src.bounded=latest --accept-duplicates > accept.log 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "with --accept-duplicates it resumes (rc $rc)"

# ---- refusals -----------------------------------------------------------------------
mkdir -p "$work/nock"
cat > "$work/nock/job.yaml" <<YAML
name: nock
sources:
  gen: {type: datagen, generator: sequence, events: 10}
sinks:
  out: {type: kafka, inputs: [gen], brokers: '$addr', topic: out, delivery: exactly-once}
YAML
(cd "$work/nock" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
rc=$?
check '[ $rc -ne 0 ] && grep -q "exactly-once needs checkpoints" "$work/nock/log"' \
  "exactly-once without checkpoints is refused (rc $rc)"
exit $fail
