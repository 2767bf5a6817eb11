#!/usr/bin/env bash
# tests/integration/test_datagen_time.sh: datagen's event times at the end
# of the range runnel keeps them in (0000-01-01 to 9999-12-31).
#
# A bounded generator whose last event is the last millisecond of 9999
# makes every event with the right time; an unbounded one that reaches the
# end stops with exit 2 and a message after its last representable event,
# rather than overflowing (which the sanitizer build would abort on).
#
# Env: RUNNEL (the binary), RN_TEST_TMP (scratch space).
set -u

RUNNEL=${RUNNEL:-$(dirname "$0")/../../build/runnel}
TMP_ROOT=${RN_TEST_TMP:-/tmp}
mkdir -p "$TMP_ROOT" || exit 1
DIR=$(mktemp -d "$TMP_ROOT/datagen_time.XXXXXX") || exit 1
trap 'rm -rf "$DIR"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

END=253402300799999 # 9999-12-31T23:59:59.999Z

# Bounded: 4 events 333 ms apart, the last at END - 1 + ... exactly END.
cat >"$DIR/bounded.yaml" <<EOF
name: dg-bounded
parallelism: 2
sources:
  gen: {type: datagen, events: 4, start: $((END - 999)), interval: 333ms}
sinks:
  out: {type: file, inputs: [gen], path: $DIR/bounded.jsonl}
EOF
"$RUNNEL" run --quiet "$DIR/bounded.yaml" 2>"$DIR/bounded.err" ||
    fail "bounded: exit status $?: $(cat "$DIR/bounded.err")"
sed -n 's/.*"ts":\([0-9]*\).*/\1/p' "$DIR/bounded.jsonl" | sort -n >"$DIR/bounded.ts"
printf '%s\n' $((END - 999)) $((END - 666)) $((END - 333)) $END >"$DIR/bounded.want"
cmp -s "$DIR/bounded.want" "$DIR/bounded.ts" ||
    fail "bounded: event times $(tr '\n' ' ' <"$DIR/bounded.ts"), want $(tr '\n' ' ' <"$DIR/bounded.want")"

# Unbounded, one event a day from 10 days before the end: 10 events (the
# last on 9999-12-31), then a clear stop.
for par in 1 3; do
    cat >"$DIR/unbounded$par.yaml" <<EOF
name: dg-unbounded
parallelism: $par
sources:
  gen: {type: datagen, start: $((END - 999 - 9 * 86400000)), interval: 1d}
sinks:
  out: {type: file, inputs: [gen], path: $DIR/unbounded$par.jsonl}
EOF
    "$RUNNEL" run --quiet "$DIR/unbounded$par.yaml" 2>"$DIR/unbounded$par.err"
    status=$?
    [ "$status" -eq 2 ] || fail "unbounded x$par: exit status $status, want 2"
    grep -qF "would have an event time past 9999-12-31" "$DIR/unbounded$par.err" ||
        fail "unbounded x$par: no message about the end of time: $(cat "$DIR/unbounded$par.err")"
done

echo "test_datagen_time: $failures failed"
[ "$failures" -eq 0 ]
