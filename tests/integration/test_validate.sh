#!/usr/bin/env bash
# tests/integration/test_validate.sh: `runnel validate` on bad and good job
# files (docs/job-file.md).
#
# A bad file must exit 1 with one line on stderr that starts with
# "runnel: FILE:LINE:COL: " at the exact position of the mistake and says
# what is wrong (a key phrase is checked, not the whole wording). A good
# file exits 0 and prints the planned graph. Every failure prints the
# command's actual output.
#
# Env: RUNNEL (the binary), RN_TEST_TMP (scratch space).
set -u

: "${RUNNEL:?set RUNNEL to the runnel binary}"
if [ ! -x "$RUNNEL" ]; then
    echo "test_validate: RUNNEL='$RUNNEL' is not an executable" >&2
    exit 1
fi
TMP_ROOT=${RN_TEST_TMP:-/tmp}
mkdir -p "$TMP_ROOT" || exit 1
DIR=$(mktemp -d "$TMP_ROOT/validate.XXXXXX") || exit 1
trap 'rm -rf "$DIR"' EXIT

checks=0
failures=0
OUT="$DIR/stdout"
ERR="$DIR/stderr"

fail() {
    failures=$((failures + 1))
    echo "FAIL: $1"
    echo "  --- stdout:"
    sed 's/^/  | /' "$OUT"
    echo "  --- stderr:"
    sed 's/^/  | /' "$ERR"
}

# run ARGS...: runs $RUNNEL, leaving its status in $rc and its output in
# $OUT and $ERR.
run() {
    "$RUNNEL" "$@" >"$OUT" 2>"$ERR"
    rc=$?
}

# expect_error NAME POS PHRASE [--set k=v ...] < job.yaml
#   Writes the job file NAME.yaml, validates it and checks exit 1, a
#   one-line error "runnel: FILE:POS: ..." and PHRASE in it.
expect_error() {
    local name=$1 pos=$2 phrase=$3
    shift 3
    local file="$DIR/$name.yaml"
    cat >"$file"
    checks=$((checks + 1))
    run validate "$file" "$@"
    local msg
    msg=$(cat "$ERR")
    if [ "$rc" -ne 1 ]; then
        fail "$name: exit status $rc, want 1"
    elif [[ "$msg" != "runnel: $file:$pos: "* ]]; then
        fail "$name: error does not start with 'runnel: $file:$pos: '"
    elif [[ "$msg" != *"$phrase"* ]]; then
        fail "$name: error does not say '$phrase'"
    elif [ "$(wc -l <"$ERR")" -ne 1 ]; then
        fail "$name: error is not one line"
    elif [ -s "$OUT" ]; then
        fail "$name: a bad file printed a graph"
    fi
}

# expect_status NAME WANT ARGS...: checks only the exit status (and that
# there is a message on stderr when WANT is not 0).
expect_status() {
    local name=$1 want=$2
    shift 2
    checks=$((checks + 1))
    run "$@"
    if [ "$rc" -ne "$want" ]; then
        fail "$name: exit status $rc, want $want"
    elif [ "$want" -ne 0 ] && [ ! -s "$ERR" ]; then
        fail "$name: no message on stderr"
    fi
}

# expect_out NAME TEXT: the last command's stdout holds TEXT (one line).
expect_out() {
    checks=$((checks + 1))
    if ! grep -qF -- "$2" "$OUT"; then
        fail "$1: stdout does not have '$2'"
    fi
}

# ---- syntax ----------------------------------------------------------------

# The flow mapping opened on line 3 is not closed; libyaml notices at the
# ':' of "sinks:".
expect_error syntax "4:6" "did not find expected" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10
sinks:
  out: {type: discard, inputs: [gen]}
EOF

# ---- keys --------------------------------------------------------------------

expect_error top_key "2:1" "unknown key 'paralelism' in the job; did you mean 'parallelism'?" <<'EOF'
name: vt
paralelism: 2
sources:
  gen: {type: datagen, events: 10}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

expect_error component_key "8:5" "unknown key 'wher' in operator 'kept'; did you mean 'where'?" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
operators:
  kept:
    type: filter
    inputs: [gen]
    wher: "value > 1"
sinks:
  out: {type: discard, inputs: [kept]}
EOF

expect_error wrong_type "2:14" "expected an integer, got 'two'" <<'EOF'
name: vt
parallelism: two
sources:
  gen: {type: datagen, events: 10}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

# A map of 100,000 keys (about 1 MB): loading is linear in the keys (each
# is checked for a duplicate through a hash index), so it validates fast; a
# check that scans the map per key took minutes here and under the
# sanitizers would outrun the test's timeout. The unknown key and a
# duplicate at distance are both reported at their place.
big_map() {
    printf 'name: vt\nsources:\n  gen: {type: datagen, events: 10}\n'
    printf 'sinks:\n  out: {type: discard, inputs: [gen]}\nx_big:\n'
    seq 0 99999 | sed 's/.*/  k&: 1/'
}
# (Through files, not pipes: expect_error must run in this shell to count.)
big_map >"$DIR/big.in"
expect_error big_map_unknown_key "6:1" "unknown key 'x_big' in the job" <"$DIR/big.in"
echo "  k3: 2" >>"$DIR/big.in"
expect_error big_map_duplicate "100007:3" "duplicate key 'k3' (first at 10:3)" <"$DIR/big.in"

# A schema is a map too, bounded by the widest row runnel supports.
{ printf 'name: vt\nsources:\n  src:\n    type: file\n    path: in.csv\n    format: csv\n    schema:\n'
  seq 0 4096 | sed 's/.*/      f&: int/'
  printf 'sinks:\n  out: {type: discard, inputs: [src]}\n'; } >"$DIR/wide.in"
expect_error wide_schema "8:7" "has 4097 fields; at most 4096 are supported" <"$DIR/wide.in"

# ---- the graph -----------------------------------------------------------------

expect_error unknown_input "7:14" "unknown input 'gne'; did you mean 'gen'?" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
sinks:
  out:
    type: discard
    inputs: [gne]
EOF

# a reads b and b reads a; reported at the inputs of a.
expect_error cycle "7:13" "cycle" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
operators:
  a:
    type: filter
    inputs: [b]
    where: "value > 1"
  b:
    type: filter
    inputs: [a]
    where: "value > 2"
sinks:
  out: {type: discard, inputs: [b, gen]}
EOF
checks=$((checks + 1))
if ! grep -qF "a <- b <- a" "$ERR"; then
    fail "cycle: the message does not show the cycle 'a <- b <- a'"
fi

expect_error unknown_type "6:11" "unknown operator type 'filtr'; did you mean 'filter'?" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
operators:
  kept:
    type: filtr
    inputs: [gen]
    where: "value > 1"
sinks:
  out: {type: discard, inputs: [kept]}
EOF

# Across sections: a source and a sink with one name.
expect_error duplicate_name "5:3" "the name 'gen' is used twice" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
sinks:
  gen: {type: discard, inputs: [gen]}
EOF

# Within a section it is a duplicate key of the YAML map.
expect_error duplicate_key "9:3" "duplicate key 'x' (first at 5:3)" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
operators:
  x:
    type: filter
    inputs: [gen]
    where: "value > 1"
  x:
    type: filter
    inputs: [gen]
    where: "value > 2"
sinks:
  out: {type: discard, inputs: [x]}
EOF

expect_error unknown_side_output "13:33" "'counts' has no side output 'nope' (it has: late)" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
operators:
  counts:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count()}
    late_output: late
sinks:
  out: {type: discard, inputs: [counts.nope]}
EOF

# ---- schemas and expressions ------------------------------------------------

expect_error where_not_bool "8:12" "must be a condition (bool), not int" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
operators:
  kept:
    type: filter
    inputs: [gen]
    where: "value + 1"
sinks:
  out: {type: discard, inputs: [kept]}
EOF

# The column points inside the expression: the quote is at column 12, so
# `colour` (13 characters into it) is at column 26.
expect_error unknown_field "8:26" "unknown field 'colour'" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
operators:
  kept:
    type: filter
    inputs: [gen]
    where: "value > 1 && colour == 'red'"
sinks:
  out: {type: discard, inputs: [kept]}
EOF

expect_error key_not_in_schema "8:10" "key field 'user' is not in its input" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10}
operators:
  counts:
    type: window_aggregate
    inputs: [gen]
    key: [user]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count()}
sinks:
  out: {type: discard, inputs: [counts]}
EOF

# ---- a good file -------------------------------------------------------------

GOOD="$DIR/good.yaml"
cat >"$GOOD" <<'EOF'
name: vt-good
parallelism: 2
sources:
  gen:
    type: datagen
    events: 100
    keys: 5
    event_time: ts
operators:
  kept:
    type: filter
    inputs: [gen]
    where: "value > 10"
  counts:
    type: window_aggregate
    inputs: [kept]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates:
      n: count()
sinks:
  out:
    type: discard
    inputs: [counts]
EOF

expect_status good 0 validate "$GOOD"
expect_out good "job vt-good: 4 components, default parallelism 2"
expect_out good "source gen (datagen) x2 bounded"
expect_out good "operator kept (filter) x2"
expect_out good "<- gen (forward, chained)"
expect_out good "operator counts (window_aggregate) x2 keyed"
expect_out good "<- kept (keyed)"
expect_out good "output: {key: string, window_start: timestamp, window_end: timestamp, n: int}"
expect_out good "sink out (discard) x2"
expect_out good "$GOOD: ok"

expect_status set_parallelism 0 validate "$GOOD" --set parallelism=3
expect_out set_parallelism "default parallelism 3"
expect_out set_parallelism "source gen (datagen) x3 bounded"
expect_out set_parallelism "operator counts (window_aggregate) x3 keyed"
expect_out set_parallelism "sink out (discard) x3"

# --set reaches into components too.
expect_status set_component 0 validate "$GOOD" --set sources.gen.parallelism=4
expect_out set_component "source gen (datagen) x4 bounded"
expect_out set_component "<- gen (rebalance)"

# ---- values out of range ----------------------------------------------------------

# An event time past what int64 arithmetic on it allows (and what RFC 3339
# can write): refused at the value, not overflowed at run time.
expect_error datagen_start "3:43" "start must be an event time from 0000-01-01 to 9999-12-31" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10, start: 9223372036854775807}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

expect_error datagen_start_low "3:43" "got -62167219200001" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10, start: -62167219200001}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

expect_error datagen_start_int64 "3:43" "integer '9223372036854775808' is out of range" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10, start: 9223372036854775808}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

# The last event's time counts too: 10 events 100 ms apart from 900 ms
# before the end of 9999 fit, 11 do not.
expect_error datagen_last_event "3:32" "11 events from start 253402300799099 at this interval would end past 9999-12-31; at most 10 fit" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 11, start: 253402300799099, interval: 100ms}
sinks:
  out: {type: discard, inputs: [gen]}
EOF
sed 's/events: 11/events: 10/' "$DIR/datagen_last_event.yaml" >"$DIR/datagen_fits.yaml"
expect_status datagen_last_event_fits 0 validate "$DIR/datagen_fits.yaml"

expect_error datagen_interval_us "3:46" "expected a duration such as 1ms or 250us" <<'EOF'
name: vt
sources:
  gen: {type: datagen, events: 10, interval: 99999999999999999999us}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

expect_error rest_port "3:11" "the port must be a number from 1 to 65535, got '65536'" <<'EOF'
name: vt
rest:
  listen: 127.0.0.1:65536
sources:
  gen: {type: datagen, events: 10}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

expect_error rest_port_zero "3:11" "got '0'" <<'EOF'
name: vt
rest:
  listen: 127.0.0.1:0
sources:
  gen: {type: datagen, events: 10}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

expect_error rest_host "3:11" "'localhost' is not an IP address" <<'EOF'
name: vt
rest:
  listen: localhost:8081
sources:
  gen: {type: datagen, events: 10}
sinks:
  out: {type: discard, inputs: [gen]}
EOF

mkdir -p "$DIR/outdir"
expect_error sink_path_dir "5:42" "path '$DIR/outdir' is a directory" <<EOF
name: vt
sources:
  gen: {type: datagen, events: 10}
sinks:
  out: {type: file, inputs: [gen], path: $DIR/outdir}
EOF

touch "$DIR/plainfile"
expect_error sink_path_under_file "5:42" "is not a directory" <<EOF
name: vt
sources:
  gen: {type: datagen, events: 10}
sinks:
  out: {type: file, inputs: [gen], path: $DIR/plainfile/out.jsonl}
EOF

# ---- validate touches nothing -------------------------------------------------------

# State, checkpoint, savepoint and output directories that do not exist yet
# still do not after validate: it plans, it opens no RocksDB, makes no
# directory and binds no port (run does all of that).
cat >"$DIR/untouched.yaml" <<EOF
name: vt
checkpoints: {interval: 1s, dir: $DIR/fresh/checkpoints, savepoints: $DIR/fresh/savepoints}
state: {backend: rocksdb, dir: $DIR/fresh/state}
rest: {listen: "127.0.0.1:1"}
sources:
  gen: {type: datagen, events: 10}
operators:
  counts:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count()}
sinks:
  out: {type: file, inputs: [counts], path: $DIR/fresh/out/counts.jsonl}
EOF
expect_status untouched 0 validate "$DIR/untouched.yaml"
expect_out untouched "operator counts (window_aggregate) x1 keyed"
checks=$((checks + 1))
if [ -e "$DIR/fresh" ]; then
    fail "untouched: validate made $(find "$DIR/fresh" | head -5 | tr '\n' ' ')"
fi
# Without its REST endpoint the same job runs, and makes them: the check
# above looked at the right places.
grep -v '^rest:' "$DIR/untouched.yaml" >"$DIR/untouched_run.yaml"
expect_status untouched_runs 0 run --quiet "$DIR/untouched_run.yaml"
checks=$((checks + 1))
if [ ! -d "$DIR/fresh/state" ] || [ ! -d "$DIR/fresh/checkpoints" ] ||
    [ ! -f "$DIR/fresh/out/counts.jsonl" ]; then
    fail "untouched_runs: run did not make the state, checkpoint and output paths"
fi

# ---- bad arguments -------------------------------------------------------------

expect_status run_missing_file 1 run "$DIR/does-not-exist.yaml"
checks=$((checks + 1))
if ! grep -qF "$DIR/does-not-exist.yaml" "$ERR"; then
    fail "run_missing_file: the message does not name the file"
fi
expect_status validate_missing_file 1 validate "$DIR/does-not-exist.yaml"
expect_status run_bad_file 1 run "$DIR/cycle.yaml"
expect_status set_no_equals 1 validate "$GOOD" --set parallelism
expect_status set_empty_path 1 validate "$GOOD" --set =3
expect_status set_bad_value 1 validate "$GOOD" --set parallelism=two
expect_status set_out_of_range 1 validate "$GOOD" --set parallelism=0
expect_status set_bad_yaml 1 validate "$GOOD" --set 'parallelism=[1'
expect_status set_through_scalar 1 validate "$GOOD" --set name.x=1
expect_status no_job_file 1 validate
expect_status unknown_option 1 validate "$GOOD" --bogus
expect_status unknown_command 1 frobnicate "$GOOD"

echo "test_validate: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
