# tests/kafka/lib.sh: what the Kafka tests that run runnel share. Sourced
# after `set -uo pipefail`, with RN_TEST_TMP set; NAME is the test's name.
#   kafka_test_start NAME: a scratch directory ($work) and a broker of its
#     own in it ($addr), stopped on exit; the directory is removed unless
#     a check failed or RN_KEEP is set.
#   check EXPR MESSAGE: "ok: MESSAGE" when EXPR holds, else "FAIL: ..."
#     and the test fails ($fail).
#   kafka_topic NAME PARTITIONS: creates a topic or fails the test.
#   wait_lines FILE N SECONDS: waits until FILE has N lines, up to five
#     times SECONDS (a deadline for a hang: a loaded sanitizer run is slow).
#   newest_checkpoint DIR: the number of the newest checkpoint in DIR/ckpt
#     (0: none).
#   wait_checkpoint DIR AFTER: waits until the job ($pid) completed a
#     checkpoint newer than AFTER in DIR/ckpt, or ended (up to 150 s).
#   read_committed_stable DIR: runs DIR/job.yaml, a bounded read_committed
#     reader writing DIR/out.jsonl, until two reads agree (see below).
BROKER=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/broker.sh
fail=0

check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

kafka_cleanup() {
  "$BROKER" stop >/dev/null 2>&1 || true
  if [ $fail -eq 0 ] && [ -z "${RN_KEEP:-}" ]; then rm -rf "$work"; else echo "kept: $work"; fi
}

kafka_test_start() {
  mkdir -p "$RN_TEST_TMP"
  work=$(mktemp -d "$RN_TEST_TMP/$1.XXXXXX")
  # The watchdog stops the broker even if the test is killed (SIGKILL).
  RN_KAFKA_DIR=$work/broker
  RN_KAFKA_WATCH_PID=$$
  export RN_KAFKA_DIR RN_KAFKA_WATCH_PID
  trap kafka_cleanup EXIT
  mkdir -p "$RN_KAFKA_DIR"
  addr=$("$BROKER" start | tail -n 1)
  [[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]] || { echo "FAIL: broker.sh start ($addr)"; fail=1; exit 1; }
}

kafka_topic() {
  "$BROKER" topic "$1" "$2" >/dev/null || { echo "FAIL: topic $1"; fail=1; exit 1; }
}

# wait_lines FILE N SECONDS: waits until FILE has N lines; the deadline
# is five times SECONDS, since it only catches a hang.
wait_lines() {
  local _
  for _ in $(seq $(($3 * 25))); do
    [ "$( { wc -l < "$1"; } 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    sleep 0.2
  done
  return 1
}

newest_checkpoint() {
  ls "$1/ckpt" 2>/dev/null | grep -E '^chk-[0-9]+$' | sed 's/^chk-0*//' | sort -n | tail -1 | grep . || echo 0
}

wait_checkpoint() {
  local _
  for _ in $(seq 3000); do
    [ "$(newest_checkpoint "$1")" -gt "$2" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
}

# A bounded read_committed reader ends at each partition's last stable
# offset, and Kafka writes a committed transaction's markers only after
# EndTxn has answered: read right after a job, a partition may not show
# its last transaction yet. Read until two reads half a second apart give
# as many lines (six at most); lost or doubled records still show.
read_committed_stable() {
  local rc=0 prev=-1 n _
  for _ in 1 2 3 4 5 6; do
    (cd "$1" && timeout 120 "$RUNNEL" run job.yaml --quiet > log 2>&1)
    rc=$?
    [ $rc -eq 0 ] || return $rc
    n=$( { wc -l < "$1/out.jsonl"; } 2>/dev/null || echo 0)
    [ "$n" = "$prev" ] && return 0
    prev=$n
    sleep 0.5
  done
  return $rc
}
