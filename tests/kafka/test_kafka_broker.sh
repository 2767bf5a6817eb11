#!/usr/bin/env bash
# tests/kafka/test_kafka_broker.sh: the test broker (tests/kafka/broker.sh)
# and the machine's librdkafka together.
#
# Starts a broker in a private directory, creates a topic of 3 partitions
# (and checks that `topic` accepts the same topic again but refuses another
# partition count), runs kafka_check on it (a transactional producer, an
# aborted transaction, a read_committed consumer group), stops the broker
# and checks that it is gone and its data removed. A trap stops the broker
# on any exit, and broker.sh's watchdog (RN_KAFKA_WATCH_PID) when the test
# is killed, so that no broker outlives the test.
#
# Env: KAFKA_CHECK (required: the built tests/kafka/kafka_check.c),
#      RN_TEST_TMP (scratch space), and broker.sh's RN_KAFKA_* variables
#      except RN_KAFKA_DIR, which the test sets.
set -euo pipefail

BROKER=$(cd "$(dirname "$0")" && pwd)/broker.sh
KAFKA_CHECK=${KAFKA_CHECK:-}
passed=0
failed=0

ok() {
    echo "ok: $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
finish() {
    echo "test_kafka_broker: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

if [ -z "$KAFKA_CHECK" ] || [ ! -x "$KAFKA_CHECK" ]; then
    fail "KAFKA_CHECK must name the built kafka_check program (is '${KAFKA_CHECK}')"
    finish
    exit 1
fi

mkdir -p "${RN_TEST_TMP:-/tmp}"
RN_KAFKA_DIR=$(mktemp -d "${RN_TEST_TMP:-/tmp}/kafka_broker.XXXXXX")
# The watchdog stops the broker even if this test is killed with SIGKILL,
# when the trap below cannot run.
RN_KAFKA_WATCH_PID=$$
export RN_KAFKA_DIR RN_KAFKA_WATCH_PID

cleanup() {
    "$BROKER" stop >/dev/null 2>&1 || true
    # Kept when something failed: broker.log says why.
    if [ "$failed" -eq 0 ]; then
        rm -rf "$RN_KAFKA_DIR"
    else
        echo "the broker's files are kept in $RN_KAFKA_DIR"
    fi
}
trap cleanup EXIT

# ---- start --------------------------------------------------------------

t0=$(date +%s%N)
if ! out=$("$BROKER" start); then
    fail "broker.sh start"
    finish
    exit 1
fi
addr=$(printf '%s\n' "$out" | tail -n 1)
if [[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]]; then
    ok "broker.sh start printed $addr after $((($(date +%s%N) - t0) / 1000000)) ms"
else
    fail "broker.sh start printed '$addr' as its last line, not 127.0.0.1:PORT"
    finish
    exit 1
fi
pid=$(cat "$RN_KAFKA_DIR/pid")

# ---- topic --------------------------------------------------------------

topic=check
if "$BROKER" topic "$topic" 3; then
    ok "topic $topic created with 3 partitions"
else
    fail "broker.sh topic $topic 3"
fi
if "$BROKER" topic "$topic" 3; then
    ok "topic $topic 3 again: accepted"
else
    fail "broker.sh topic $topic 3 on the existing topic failed"
fi
if "$BROKER" topic "$topic" 5 2>/dev/null; then
    fail "broker.sh topic $topic 5 accepted a topic that has 3 partitions"
else
    ok "topic $topic 5 on a topic of 3 partitions: refused"
fi

# ---- librdkafka against it ------------------------------------------------

if "$KAFKA_CHECK" "$addr" "$topic" 100 20; then
    ok "kafka_check: transactions and a read_committed consumer group work"
else
    fail "kafka_check $addr $topic 100 20 (broker log: $RN_KAFKA_DIR/broker.log)"
fi

# ---- stop -----------------------------------------------------------------

if "$BROKER" stop; then
    ok "broker.sh stop"
else
    fail "broker.sh stop"
fi
# The stopped broker may stay a zombie until its new parent reaps it.
state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
if [ -n "$state" ] && [ "$state" != Z ]; then
    fail "the broker (pid $pid) still runs after stop"
elif [ -e "$RN_KAFKA_DIR/data" ]; then
    fail "stop left $RN_KAFKA_DIR/data"
else
    ok "the broker is gone and its data removed"
fi
if "$BROKER" stop; then
    ok "broker.sh stop again: nothing to do"
else
    fail "broker.sh stop with no broker running"
fi

finish
