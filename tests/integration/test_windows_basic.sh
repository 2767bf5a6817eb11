#!/usr/bin/env bash
# tests/integration/test_windows_basic.sh: window_aggregate end to end.
#
# Runs build/runnel on small job files and compares the window rows with
# results worked out by hand: tumbling and sliding windows over datagen;
# session windows (merging, bridging, strings and count_distinct across
# merges) over a JSON file; lateness with late_output, and allowed_lateness
# re-firing a window and then dropping what comes after its cleanup; two
# inputs of one schema as one stream; plan errors with their FILE:LINE:COL.
#
# Lateness depends on when the watermark moves. A source emits its
# watermark after each batch of up to 1024 records, so the input files are
# cut into batches of exactly 1024 lines with padding records (user
# "_pad", event time 0, filtered out before the window): everything in one
# batch sees the watermark left by the batches before it.
#
# Rows of one firing come out in key-group order, which is no business of
# these tests: outputs are compared sorted.
#
# Every case runs once per state backend (RN_BACKEND; unset: all of them).
#
# Env: RUNNEL (the binary), RN_TEST_TMP (scratch space).
set -u

if [ -z "${RN_BACKEND:-}" ]; then
    status=0
    for backend in memory rocksdb; do
        echo "== state backend $backend"
        RN_BACKEND=$backend bash "$0" || status=1
    done
    exit $status
fi

RUNNEL=${RUNNEL:-$(dirname "$0")/../../build/runnel}
TMP=${RN_TEST_TMP:-/tmp}/windows_basic.$$
rm -rf "$TMP"
mkdir -p "$TMP"
cd "$TMP" || exit 1
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# same NAME EXPECTED_FILE ACTUAL_FILE: equal once both are sorted.
same() {
    if [ ! -f "$3" ]; then
        fail "$1: $3 was not written"
    elif ! cmp -s <(sort "$2") <(sort "$3"); then
        fail "$1: $3 differs from what is expected (sorted, expected first):"
        diff <(sort "$2") <(sort "$3") >&2
    fi
}

# run NAME WANT_STATUS JOB: runs the job, keeps stderr in NAME.err.
run() {
    "$RUNNEL" run "$3" --quiet --set state.backend="$RN_BACKEND" >"$1.out" 2>"$1.err"
    local status=$?
    if [ "$status" -ne "$2" ]; then
        fail "$1: exit status $status, expected $2"
        cat "$1.err" >&2
    fi
}

# batch LINE...: writes the lines, then padding up to 1024 lines.
batch() {
    local n=0
    for line in "$@"; do
        echo "$line"
        n=$((n + 1))
    done
    while [ $n -lt 1024 ]; do
        echo '{"user":"_pad","name":"","v":0,"ts":0}'
        n=$((n + 1))
    done
}

# A file-source job: JOB_FILE INPUT OUT LATE WINDOW AGGREGATES EXTRA
file_job() {
    cat >"$1" <<EOF
name: ${1%.yaml}
sources:
  events:
    type: file
    path: $2
    format: json
    schema: {user: string, name: string, v: int, ts: timestamp}
    event_time: ts
    watermark: {max_out_of_orderness: 0ms}
operators:
  real:
    type: filter
    inputs: [events]
    where: "user != '_pad'"
  agg:
    type: window_aggregate
    inputs: [real]
    key: user
    window: $5
    aggregates: $6
$7
sinks:
  out:
    type: file
    inputs: [agg]
    path: $3
    format: json
EOF
    if [ -n "$4" ]; then
        cat >>"$1" <<EOF
  late:
    type: file
    inputs: [agg.late]
    path: $4
    format: json
EOF
    fi
}

# ---- tumbling over datagen: every aggregate --------------------------------

cat >tumbling.yaml <<'EOF'
name: tumbling
sources:
  gen:
    type: datagen
    generator: sequence
    events: 20
    keys: 3
    start: 0
    interval: 1ms
    event_time: ts
operators:
  agg:
    type: window_aggregate
    inputs: [gen]
    key: key
    window: {type: tumbling, size: 5ms}
    aggregates:
      n: count()
      s: sum(value)
      lo: min(value)
      hi: max(key)
      a: avg(value)
      d: count_distinct(key)
      f: first(id)
      l: last(id)
sinks:
  out:
    type: file
    inputs: [agg]
    path: tumbling.jsonl
    format: json
EOF
cat >want_tumbling.jsonl <<'EOF'
{"key":"k0","window_start":0,"window_end":5,"n":2,"s":3,"lo":0,"hi":"k0","a":1.5,"d":1,"f":0,"l":3}
{"key":"k1","window_start":0,"window_end":5,"n":2,"s":5,"lo":1,"hi":"k1","a":2.5,"d":1,"f":1,"l":4}
{"key":"k2","window_start":0,"window_end":5,"n":1,"s":2,"lo":2,"hi":"k2","a":2.0,"d":1,"f":2,"l":2}
{"key":"k0","window_start":5,"window_end":10,"n":2,"s":15,"lo":6,"hi":"k0","a":7.5,"d":1,"f":6,"l":9}
{"key":"k1","window_start":5,"window_end":10,"n":1,"s":7,"lo":7,"hi":"k1","a":7.0,"d":1,"f":7,"l":7}
{"key":"k2","window_start":5,"window_end":10,"n":2,"s":13,"lo":5,"hi":"k2","a":6.5,"d":1,"f":5,"l":8}
{"key":"k0","window_start":10,"window_end":15,"n":1,"s":12,"lo":12,"hi":"k0","a":12.0,"d":1,"f":12,"l":12}
{"key":"k1","window_start":10,"window_end":15,"n":2,"s":23,"lo":10,"hi":"k1","a":11.5,"d":1,"f":10,"l":13}
{"key":"k2","window_start":10,"window_end":15,"n":2,"s":25,"lo":11,"hi":"k2","a":12.5,"d":1,"f":11,"l":14}
{"key":"k0","window_start":15,"window_end":20,"n":2,"s":33,"lo":15,"hi":"k0","a":16.5,"d":1,"f":15,"l":18}
{"key":"k1","window_start":15,"window_end":20,"n":2,"s":35,"lo":16,"hi":"k1","a":17.5,"d":1,"f":16,"l":19}
{"key":"k2","window_start":15,"window_end":20,"n":1,"s":17,"lo":17,"hi":"k2","a":17.0,"d":1,"f":17,"l":17}
EOF
run tumbling 0 tumbling.yaml
same tumbling want_tumbling.jsonl tumbling.jsonl

# The same with parallelism 2: the same rows.
"$RUNNEL" run tumbling.yaml --quiet --set state.backend="$RN_BACKEND" --set parallelism=2 \
    --set sinks.out.path=tumbling2.jsonl \
    >/dev/null 2>tumbling2.err || fail "tumbling p2: exit status $?"
same tumbling-p2 want_tumbling.jsonl tumbling2.jsonl

# ---- sliding over datagen: windows before zero, each record in two --------

cat >sliding.yaml <<'EOF'
name: sliding
sources:
  gen:
    type: datagen
    generator: sequence
    events: 10
    keys: 2
    start: 0
    interval: 1ms
    event_time: ts
operators:
  agg:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: sliding, size: 10ms, slide: 5ms}
    aggregates: {n: count(), s: sum(value)}
sinks:
  out:
    type: file
    inputs: [agg]
    path: sliding.jsonl
    format: json
EOF
cat >want_sliding.jsonl <<'EOF'
{"key":"k0","window_start":-5,"window_end":5,"n":3,"s":6}
{"key":"k1","window_start":-5,"window_end":5,"n":2,"s":4}
{"key":"k0","window_start":0,"window_end":10,"n":5,"s":20}
{"key":"k1","window_start":0,"window_end":10,"n":5,"s":25}
{"key":"k0","window_start":5,"window_end":15,"n":2,"s":14}
{"key":"k1","window_start":5,"window_end":15,"n":3,"s":21}
EOF
run sliding 0 sliding.yaml
same sliding want_sliding.jsonl sliding.jsonl

# ---- sessions: merging, bridging, strings and distinct across merges -------

# gap 10ms. a: 0, 5, 12 grow one session [0,22); 40 starts [40,50).
# b: 3 and 13 touch ([3,13) and [13,23)) and merge into [3,23).
# c: 0 and 20 are apart until 10 arrives and bridges them: [0,30).
batch '{"user":"a","name":"x","v":1,"ts":0}' \
    '{"user":"c","name":"q","v":1,"ts":0}' \
    '{"user":"a","name":"y","v":2,"ts":5}' \
    '{"user":"b","name":"m","v":5,"ts":3}' \
    '{"user":"c","name":"p","v":2,"ts":20}' \
    '{"user":"a","name":"x","v":3,"ts":12}' \
    '{"user":"b","name":"m","v":6,"ts":13}' \
    '{"user":"a","name":"z","v":4,"ts":40}' \
    '{"user":"c","name":"r","v":4,"ts":10}' >sessions.jsonl
file_job session.yaml sessions.jsonl session_out.jsonl "" "{type: session, gap: 10ms}" \
    "{n: count(), s: sum(v), lo: min(name), hi: max(name), f: first(name), l: last(name), d: count_distinct(name)}" \
    "    allowed_lateness: 0s"
cat >want_session.jsonl <<'EOF'
{"user":"a","window_start":0,"window_end":22,"n":3,"s":6,"lo":"x","hi":"y","f":"x","l":"x","d":2}
{"user":"a","window_start":40,"window_end":50,"n":1,"s":4,"lo":"z","hi":"z","f":"z","l":"z","d":1}
{"user":"b","window_start":3,"window_end":23,"n":2,"s":11,"lo":"m","hi":"m","f":"m","l":"m","d":1}
{"user":"c","window_start":0,"window_end":30,"n":3,"s":7,"lo":"p","hi":"r","f":"q","l":"p","d":3}
EOF
run session 0 session.yaml
same session want_session.jsonl session_out.jsonl

# ---- lateness 0 with late_output -------------------------------------------

# Batch 1 moves the watermark to 11, so [0,10) fires; in batch 2, a@3 is late
# (9 <= 11) and goes to the side output as it came; a@15 is on time.
{
    batch '{"user":"a","name":"","v":1,"ts":1}' '{"user":"a","name":"","v":2,"ts":5}' \
        '{"user":"b","name":"","v":3,"ts":12}'
    batch '{"user":"a","name":"","v":4,"ts":3}' '{"user":"a","name":"","v":5,"ts":15}'
} >late.jsonl
file_job late.yaml late.jsonl late_out.jsonl late_late.jsonl "{type: tumbling, size: 10ms}" \
    "{n: count(), s: sum(v)}" "    late_output: late"
cat >want_late_out.jsonl <<'EOF'
{"user":"a","window_start":0,"window_end":10,"n":2,"s":3}
{"user":"a","window_start":10,"window_end":20,"n":1,"s":5}
{"user":"b","window_start":10,"window_end":20,"n":1,"s":3}
EOF
cat >want_late_late.jsonl <<'EOF'
{"user":"a","name":"","v":4,"ts":3}
EOF
run late 0 late.yaml
same late want_late_out.jsonl late_out.jsonl
same late-side want_late_late.jsonl late_late.jsonl

# ---- allowed_lateness: re-fire, then cleanup --------------------------------

# Lateness 5ms. Batch 1: watermark 11, [0,10) fires (n 2). Batch 2: a@3 is
# within lateness (9 + 5 > 11): the window fires again at once (n 3); b@20
# moves the watermark to 19, past the cleanup time 14. Batch 3: a@4 is too
# late and dropped (no late_output). Nothing else changes.
{
    batch '{"user":"a","name":"","v":1,"ts":1}' '{"user":"a","name":"","v":2,"ts":5}' \
        '{"user":"b","name":"","v":3,"ts":12}'
    batch '{"user":"a","name":"","v":4,"ts":3}' '{"user":"b","name":"","v":6,"ts":20}'
    batch '{"user":"a","name":"","v":8,"ts":4}'
} >lateness.jsonl
file_job lateness.yaml lateness.jsonl lateness_out.jsonl "" "{type: tumbling, size: 10ms}" \
    "{n: count(), s: sum(v)}" "    allowed_lateness: 5ms"
cat >want_lateness.jsonl <<'EOF'
{"user":"a","window_start":0,"window_end":10,"n":2,"s":3}
{"user":"a","window_start":0,"window_end":10,"n":3,"s":7}
{"user":"b","window_start":10,"window_end":20,"n":1,"s":3}
{"user":"b","window_start":20,"window_end":30,"n":1,"s":6}
EOF
run lateness 0 lateness.yaml
same lateness want_lateness.jsonl lateness_out.jsonl
# The first firing comes before the re-fire.
if [ -f lateness_out.jsonl ] && ! grep '"user":"a"' lateness_out.jsonl | head -1 | grep -q '"n":2'; then
    fail "lateness: the re-fire came before the first firing"
fi

# ---- two inputs of one schema are one stream --------------------------------

cat >union.yaml <<'EOF'
name: union
sources:
  one:
    type: datagen
    generator: sequence
    events: 4
    keys: 2
    start: 0
    interval: 1ms
    event_time: ts
  two:
    type: datagen
    generator: sequence
    events: 2
    keys: 2
    start: 2
    interval: 1ms
    event_time: ts
operators:
  agg:
    type: window_aggregate
    inputs: [one, two]
    key: key
    window: {type: tumbling, size: 10ms}
    aggregates: {n: count(), s: sum(value)}
sinks:
  out:
    type: file
    inputs: [agg]
    path: union.jsonl
    format: json
EOF
cat >want_union.jsonl <<'EOF'
{"key":"k0","window_start":0,"window_end":10,"n":3,"s":2}
{"key":"k1","window_start":0,"window_end":10,"n":3,"s":5}
EOF
run union 0 union.yaml
same union want_union.jsonl union.jsonl

# ---- plan errors ------------------------------------------------------------

# expect_error NAME PATTERN: validate fails with exit 1 and PATTERN in stderr.
expect_error() {
    "$RUNNEL" validate "$1.yaml" >"$1.out" 2>"$1.err"
    local status=$?
    [ "$status" -eq 1 ] || fail "$1: exit status $status, expected 1"
    grep -q -- "$2" "$1.err" || {
        fail "$1: stderr lacks '$2':"
        cat "$1.err" >&2
    }
}

file_job e_field.yaml sessions.jsonl x.jsonl "" "{type: tumbling, size: 1s}" \
    "{n: count(), total: sum(vv)}" ""
expect_error e_field "e_field.yaml:20:[0-9]*: operator 'agg' aggregate 'total': unknown field 'vv' in sum(); did you mean 'v'?"
file_job e_type.yaml sessions.jsonl x.jsonl "" "{type: tumbling, size: 1s}" \
    "{total: avg(name)}" ""
expect_error e_type "avg() needs an int or float field; 'name' is string"
file_job e_fn.yaml sessions.jsonl x.jsonl "" "{type: tumbling, size: 1s}" "{n: cnt()}" ""
expect_error e_fn "unknown aggregate function 'cnt'"
file_job e_wkey.yaml sessions.jsonl x.jsonl "" "{type: tumbling, sise: 1s}" "{n: count()}" ""
expect_error e_wkey "unknown key 'sise' in tumbling window of operator 'agg'; did you mean 'size'?"
file_job e_wtype.yaml sessions.jsonl x.jsonl "" "{type: hopping, size: 1s}" "{n: count()}" ""
expect_error e_wtype "hopping"
file_job e_zero.yaml sessions.jsonl x.jsonl "" "{type: sliding, size: 1s, slide: 0s}" \
    "{n: count()}" ""
expect_error e_zero "slide must be longer than 0"
file_job e_gap.yaml sessions.jsonl x.jsonl "" "{type: session}" "{n: count()}" ""
expect_error e_gap "missing required key 'gap'"
file_job e_dup.yaml sessions.jsonl x.jsonl "" "{type: session, gap: 1s}" "{user: count()}" ""
expect_error e_dup "the output already has a field 'user'"

sed -e 's/^  agg:/  shaped:\n    type: map\n    inputs: [two]\n    select: {key: key, ts: ts}\n  agg:/' \
    -e 's/inputs: \[one, two\]/inputs: [one, shaped]/' union.yaml >e_union.yaml
expect_error e_union "operator 'agg': its inputs must have the same fields in the same order"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); files kept in $TMP" >&2
    exit 1
fi
rm -rf "$TMP"
echo "windows_basic: all passed"
