#!/usr/bin/env bash
# tests/integration/test_csv_records.sh: CSV records in the file source are
# bounded, and a bad one costs that record only (docs/job-file.md, `file`).
#
# Each case writes a CSV file of numbered rows (id,key,value,ts) with some
# rows damaged, runs a job that copies the rows into a JSON-lines file and
# the dead letters into another, and checks exactly which ids came out and
# which lines were dead letters: a stray or unclosed quote makes one dead
# letter for its line, and every row after it survives; a quoted cell with
# line breaks in it is one good row; invalid UTF-8 is a bad record, as in
# JSON; max_record_lines and max_record_bytes bound a record.
#
# Env: RUNNEL (the binary), RN_TEST_TMP (scratch space).
set -u

RUNNEL=${RUNNEL:-$(dirname "$0")/../../build/runnel}
TMP_ROOT=${RN_TEST_TMP:-/tmp}
mkdir -p "$TMP_ROOT" || exit 1
DIR=$(mktemp -d "$TMP_ROOT/csv_records.XXXXXX") || exit 1
trap 'rm -rf "$DIR"' EXIT
cd "$DIR" || exit 1
checks=0
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# rows N: the header and rows 0..N-1, "ID,kK,ID,TS", one per line.
rows() {
    echo "id,key,value,ts"
    seq 0 $(($1 - 1)) | awk '{ printf "%d,k%d,%d,%d\n", $1, $1 % 5, $1, 1700000000000 + $1 * 10 }'
}

# damage FILE LINE TEXT: replaces line LINE of FILE with TEXT (printf %b, so
# TEXT may hold \n and \xNN). Damage from the end: a TEXT of several lines
# moves the lines after it.
damage() {
    local text
    text=$(printf '%b' "$3")
    awk -v n="$2" -v t="$text" 'NR == n { print t; next } { print }' "$1" >"$1.tmp" &&
        mv "$1.tmp" "$1"
}

# job NAME [EXTRA_SOURCE_KEYS]: a job reading NAME.csv into NAME.out.jsonl,
# dead letters into NAME.errors.jsonl.
job() {
    cat >"$1.yaml" <<EOF
name: csv-$1
sources:
  src:
    type: file
    path: $DIR/$1.csv
    format: csv
    schema: {id: int, key: string, value: int, ts: timestamp}
    event_time: ts
    on_error: dead-letter
${2:-}
sinks:
  out: {type: file, inputs: [src], path: "$DIR/$1.out.jsonl"}
  errs: {type: file, inputs: [src.errors], path: "$DIR/$1.errors.jsonl"}
EOF
}

# run NAME WANT_STATUS: runs NAME.yaml, stderr kept in NAME.err.
run() {
    "$RUNNEL" run "$1.yaml" >"$1.stdout" 2>"$1.err"
    local status=$?
    checks=$((checks + 1))
    if [ "$status" -ne "$2" ]; then
        fail "$1: exit status $status, want $2"
        sed 's/^/  | /' "$1.err" >&2
        return 1
    fi
}

# ids NAME: the ids of the rows written, sorted, one per line.
ids() {
    sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$1.out.jsonl" | sort -n
}

# expect_ids NAME N SKIPPED...: the rows out are ids 0..N-1 but SKIPPED.
expect_ids() {
    local name=$1 n=$2
    shift 2
    checks=$((checks + 1))
    seq 0 $((n - 1)) | grep -vxF -f <(printf '%s\n' "$@" x) >"$name.want_ids"
    ids "$name" >"$name.got_ids"
    if ! cmp -s "$name.want_ids" "$name.got_ids"; then
        fail "$name: the rows written are not ids 0..$((n - 1)) but $*" \
            "($(wc -l <"$name.got_ids") rows; diff want got:)"
        diff "$name.want_ids" "$name.got_ids" | head -10 >&2
    fi
}

# expect_dead NAME LINE...: exactly one dead letter per LINE of NAME.csv,
# in that order, each located there.
expect_dead() {
    local name=$1
    shift
    checks=$((checks + 1))
    local got want=""
    touch "$name.errors.jsonl"
    got=$(sed -n 's/.*"location":"[^"]*\.csv:\([0-9]*\)".*/\1/p' "$name.errors.jsonl" | tr '\n' ' ')
    [ $# -eq 0 ] || want=$(printf '%s ' "$@")
    if [ "$got" != "$want" ] || [ "$(wc -l <"$name.errors.jsonl")" -ne $# ]; then
        fail "$name: dead letters at lines '$got', want '$want'"
        head -c 2000 "$name.errors.jsonl" >&2
    fi
}

# expect_error_has NAME LINE TEXT: the dead letter of LINE says TEXT.
expect_error_has() {
    checks=$((checks + 1))
    if ! grep -F "\"location\":\"$DIR/$1.csv:$2\"" "$1.errors.jsonl" | grep -qF -- "$3"; then
        fail "$1: the dead letter of line $2 does not say '$3'"
        cat "$1.errors.jsonl" >&2
    fi
}

# ---- one unclosed quote: one dead letter, every other row -----------------

# Row 5 (line 7) opens a quote that never closes; 994 rows follow, more
# than max_record_lines (default 100): the bound is met first.
rows 1000 >unclosed.csv
damage unclosed.csv 7 '5,"k1,5,1700000000050'
job unclosed
run unclosed 0 && {
    expect_ids unclosed 1000 5
    expect_dead unclosed 7
    expect_error_has unclosed 7 'not closed within max_record_lines (100 lines)'
    expect_error_has unclosed 7 '"raw":"5,\"k1,5,1700000000050"'
}

# The same with 50 rows after it: the end of the file is met first.
rows 200 >eof.csv
damage eof.csv 151 '149,"k4,149,1700000001490'
job eof
run eof 0 && {
    expect_ids eof 200 149
    expect_dead eof 151
    expect_error_has eof 151 'not closed before the end of the file'
}

# The quote in the last row.
rows 50 >last.csv
damage last.csv 51 '49,k4,49,"1700000000490'
job last
run last 0 && {
    expect_ids last 50 49
    expect_dead last 51
}

# ---- several bad quotes -----------------------------------------------------

# An opening quote, a stray quote inside an unquoted cell, a quote after a
# value, 20 and 300 lines apart: the quotes pair up across lines, and the
# records they would join do not parse. Each is one dead letter.
rows 1000 >several.csv
damage several.csv 11 '9,"k4,9,1700000000090'
damage several.csv 31 '29,k"4,29,1700000000290'
damage several.csv 331 '329,k4,329",1700000003290'
damage several.csv 998 '996,k1,"996,1700000009960'
job several
run several 0 && {
    expect_ids several 1000 9 29 329 996
    expect_dead several 11 31 331 998
    expect_error_has several 11 'makes a record of lines 11-31 that is not valid'
}

# With on_error: skip, the warning counts each bad record once.
rows 1000 >skipped.csv
cp several.csv skipped.csv
job skipped
sed -i 's/on_error: dead-letter/on_error: skip/; /errs:/d' skipped.yaml
run skipped 0 && {
    expect_ids skipped 1000 9 29 329 996
    checks=$((checks + 1))
    grep -qF "skipped 4 bad records (on_error: skip)" skipped.err ||
        fail "skipped: the warning does not count 4 bad records: $(cat skipped.err)"
}

# With on_error: fail, the job stops at the line of the first one.
cp several.csv failed.csv
job failed
sed -i 's/on_error: dead-letter/on_error: fail/; /errs:/d' failed.yaml
run failed 2 && {
    checks=$((checks + 1))
    grep -qF "$DIR/failed.csv:11: invalid CSV" failed.err ||
        fail "failed: the message does not name failed.csv:11: $(cat failed.err)"
}

# ---- quoted cells with line breaks are records --------------------------------

rows 200 >multiline.csv
damage multiline.csv 52 '50,"say ""hi""\n\nafter a blank line",50,1700000000500'
damage multiline.csv 21 '19,"k4\nsecond line, with a comma",19,1700000000190'
job multiline
run multiline 0 && {
    expect_ids multiline 200
    expect_dead multiline
    checks=$((checks + 1))
    grep -qF '{"id":19,"key":"k4\nsecond line, with a comma","value":19,' multiline.out.jsonl &&
        grep -qF '{"id":50,"key":"say \"hi\"\n\nafter a blank line","value":50,' \
            multiline.out.jsonl ||
        fail "multiline: the cells with line breaks were not kept whole: $(head -c 600 multiline.out.jsonl)"
}

# A record that spans lines but fails on a value (not on its shape) is one
# bad record, its lines not read again.
rows 100 >badvalue.csv
damage badvalue.csv 11 '9,"k4\nline two",nine,1700000000090'
job badvalue
run badvalue 0 && {
    expect_ids badvalue 100 9
    expect_dead badvalue 11
    expect_error_has badvalue 11 "field 'value'"
}

# ---- the bounds, set ------------------------------------------------------------

# A 3-line cell is over max_record_lines: 2; a 2-line cell is within it.
rows 100 >lines.csv
damage lines.csv 31 '29,"k4\nb",29,1700000000290'
damage lines.csv 11 '9,"k4\nb\nc",9,1700000000090'
job lines '    max_record_lines: 2'
run lines 0 && {
    # Lines "b" and "c\",9,..." are read again: "b" has too few cells, the
    # second opens a quote of its own that does not close.
    expect_ids lines 100 9
    expect_dead lines 11 12 13
    expect_error_has lines 11 'not closed within max_record_lines (2 lines)'
}

# A record over max_record_bytes, on one line or over several.
rows 100 >bytes.csv
damage bytes.csv 11 "9,k$(printf 'x%.0s' $(seq 1 300)),9,1700000000090"
damage bytes.csv 31 "29,\"k4\\n$(printf 'y%.0s' $(seq 1 300))\",29,1700000000290"
job bytes '    max_record_bytes: 256'
run bytes 0 && {
    expect_ids bytes 100 9 29
    expect_dead bytes 11 31 32
    expect_error_has bytes 11 'more than max_record_bytes (256)'
    expect_error_has bytes 31 'not closed within max_record_bytes (256 bytes)'
}

# The bounds are CSV's: refused for JSON lines, and checked.
job bounds_json '    max_record_lines: 5'
sed -i 's/format: csv/format: json/' bounds_json.yaml
checks=$((checks + 1))
if "$RUNNEL" validate bounds_json.yaml >/dev/null 2>bounds_json.err ||
    ! grep -qF "bounds_json.yaml:10:5: file source 'src': max_record_lines applies to format: csv only" bounds_json.err; then
    fail "bounds_json: not refused at 10:5: $(cat bounds_json.err)"
fi
job bounds_zero '    max_record_lines: 0'
checks=$((checks + 1))
if "$RUNNEL" validate bounds_zero.yaml >/dev/null 2>bounds_zero.err ||
    ! grep -qF "bounds_zero.yaml:10:23: file source 'src': max_record_lines must be at least 1" bounds_zero.err; then
    fail "bounds_zero: not refused at 10:23: $(cat bounds_zero.err)"
fi

# ---- UTF-8 -----------------------------------------------------------------------

# Invalid UTF-8 (a lone continuation byte, an overlong '/', a UTF-16
# surrogate) is a bad record, as a JSON line with it is; valid multi-byte
# text is kept as it is.
rows 100 >utf8.csv
damage utf8.csv 11 '9,k\x80,9,1700000000090'
damage utf8.csv 21 '19,k\xc0\xaf,19,1700000000190'
damage utf8.csv 31 '29,"k\xed\xa0\x80",29,1700000000290'
damage utf8.csv 41 '39,k\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80,39,1700000000390'
job utf8
run utf8 0 && {
    expect_ids utf8 100 9 19 29
    expect_dead utf8 11 21 31
    expect_error_has utf8 11 'not UTF-8 (byte 0x80 at offset 3)'
    expect_error_has utf8 21 'not UTF-8 (byte 0xc0 at offset 4)'
    checks=$((checks + 1))
    grep -qF "$(printf '{"id":39,"key":"k\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"')" utf8.out.jsonl ||
        fail "utf8: the valid multi-byte key was not kept as it is"
}
# The same damage in JSON lines: also a bad record.
printf '{"id":1,"key":"k\x80","value":1,"ts":1}\n{"id":2,"key":"k","value":2,"ts":2}\n' >utf8json.csv
job utf8json
sed -i 's/format: csv/format: json/' utf8json.yaml
run utf8json 0 && {
    expect_dead utf8json 1
    checks=$((checks + 1))
    [ "$(ids utf8json)" = 2 ] || fail "utf8json: the good JSON line was not kept"
}

echo "test_csv_records: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
