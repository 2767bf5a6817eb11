#!/usr/bin/env bash
# tests/integration/test_file_io.sh: the file source and sink, end to end.
#
# Runs build/runnel on job files written here: JSON lines and CSV through a
# filter and a map into file sinks, compared byte for byte with expected
# files written by hand; on_error fail (exit 2, message with file:line and
# field, no output file left), skip and dead-letter (the side output
# src.errors into a file); a glob over several files; datagen into a file.
#
# Env: RUNNEL (the binary), RN_TEST_TMP (scratch space).
set -u

RUNNEL=${RUNNEL:-$(dirname "$0")/../../build/runnel}
TMP=${RN_TEST_TMP:-/tmp}/file_io.$$
rm -rf "$TMP"
mkdir -p "$TMP/data" "$TMP/out"
cd "$TMP" || exit 1
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# same NAME EXPECTED_FILE ACTUAL_FILE
same() {
    if [ ! -f "$3" ]; then
        fail "$1: $3 was not written"
    elif ! cmp -s "$2" "$3"; then
        fail "$1: $3 differs from what is expected:"
        diff "$2" "$3" >&2
    fi
}

# run NAME WANT_STATUS JOB: runs the job, keeps stderr in NAME.err.
run() {
    "$RUNNEL" run "$3" >"$1.out" 2>"$1.err"
    local status=$?
    if [ "$status" -ne "$2" ]; then
        fail "$1: exit status $status, expected $2"
        cat "$1.err" >&2
    fi
}

# ---- JSON lines through filter and map into JSON and CSV ------------------

cat >data/clicks.jsonl <<'EOF'
{"user":"ann","url":"/Home","n":1,"price":2.5,"ok":true,"ts":"2023-11-14T22:13:20Z"}
{"user":"bob","url":"/cart","n":2,"price":10,"ok":false,"ts":1700000001000}

{"user":"","url":"/x","n":3,"price":1.25,"ok":true,"ts":1700000002000}
{"user":"cy \"q\", d","url":"/A,B","n":4.0,"ok":null,"ts":"2023-11-14T23:13:23.500+01:00","extra":[1]}
EOF

cat >json.yaml <<'EOF'
name: json-io
sources:
  clicks:
    type: file
    path: data/clicks.jsonl
    format: json
    schema:
      user: string
      url: string
      n: int
      price: float
      ok: bool
      ts: timestamp
    event_time: ts
operators:
  valid:
    type: filter
    inputs: [clicks]
    where: "user != ''"
  shaped:
    type: map
    inputs: [valid]
    select:
      user: user
      url: lower(url)
      n2: n * 2
      price: price
      ok: ok
      ts: ts
sinks:
  out_json:
    type: file
    inputs: [shaped]
    path: out/clicks.jsonl
  out_csv:
    type: file
    inputs: [shaped]
    path: out/clicks.csv
    format: csv
EOF

cat >want_clicks.jsonl <<'EOF'
{"user":"ann","url":"/home","n2":2,"price":2.5,"ok":true,"ts":1700000000000}
{"user":"bob","url":"/cart","n2":4,"price":10.0,"ok":false,"ts":1700000001000}
{"user":"cy \"q\", d","url":"/a,b","n2":8,"price":null,"ok":null,"ts":1700000003500}
EOF
cat >want_clicks.csv <<'EOF'
user,url,n2,price,ok,ts
ann,/home,2,2.5,true,1700000000000
bob,/cart,4,10.0,false,1700000001000
"cy ""q"", d","/a,b",8,,,1700000003500
EOF

run json 0 json.yaml
same json want_clicks.jsonl out/clicks.jsonl
same json-csv want_clicks.csv out/clicks.csv
ls -a out | grep -q '\.tmp-' && fail "json: a temporary file was left in out/"

# ---- CSV in (columns in another order, an extra one, quoted cells) --------

printf '%s\r\n' 'ts,extra,name,score,note' \
    '1700000000000,x,ann,1.5,"multi' 'line"' \
    '2023-11-14T22:13:21Z,y,"b,o,b",-2,' \
    '1700000002000,z,cy,3,""' >data/scores.csv

cat >csv.yaml <<'EOF'
name: csv-io
sources:
  scores:
    type: file
    path: data/scores.csv
    format: csv
    schema: {name: string, score: float, note: string, ts: timestamp}
sinks:
  out:
    type: file
    inputs: [scores]
    path: out/scores.jsonl
EOF
cat >want_scores.jsonl <<'EOF'
{"name":"ann","score":1.5,"note":"multi\nline","ts":1700000000000}
{"name":"b,o,b","score":-2.0,"note":null,"ts":1700000001000}
{"name":"cy","score":3.0,"note":"","ts":1700000002000}
EOF
run csv 0 csv.yaml
same csv want_scores.jsonl out/scores.jsonl

# A CSV header without a schema field fails the job, naming the file.
printf 'name,ts\nann,1\n' >data/short.csv
sed -e 's|data/scores.csv|data/short.csv|' -e 's|out/scores.jsonl|out/short.jsonl|' csv.yaml \
    >short.yaml
run short 2 short.yaml
grep -q "data/short.csv:1: missing column 'score'" short.err ||
    fail "short: no message about the missing column: $(cat short.err)"
[ -e out/short.jsonl ] && fail "short: an output file was left"

# ---- bad records: fail, skip, dead-letter ----------------------------------

cat >data/bad.jsonl <<'EOF'
{"user":"ann","ts":1700000000000}
{"user":"bob","ts":"yesterday"}
{"user":"cy"}
not json
{"user":"dee","ts":1700000004000}
EOF

bad_job() { # NAME ON_ERROR
    cat <<EOF
name: bad-$1
sources:
  src:
    type: file
    path: data/bad.jsonl
    schema: {user: string, ts: timestamp}
    event_time: ts
    on_error: $2
sinks:
  out:
    type: file
    inputs: [src]
    path: out/$1.jsonl
EOF
}

# fail: exit 2, the message names file, line and field; no output file.
echo stale >out/fail.jsonl.keep
bad_job fail fail >fail.yaml
run fail 2 fail.yaml
grep -qF "data/bad.jsonl:2: field 'ts': expected timestamp, got \"yesterday\"" fail.err ||
    fail "fail: message not found in: $(cat fail.err)"
[ -e out/fail.jsonl ] && fail "fail: an output file was left"
ls -a out | grep -q '\.tmp-' && fail "fail: a temporary file was left in out/"

# A failing job leaves an existing output file as it was.
echo '{"old":true}' >out/keep.jsonl
bad_job keep fail >keep.yaml
run keep 2 keep.yaml
[ "$(cat out/keep.jsonl)" = '{"old":true}' ] || fail "keep: the old output file changed"

# skip: the good records only, a warning with the count.
bad_job skip skip >skip.yaml
cat >want_skip.jsonl <<'EOF'
{"user":"ann","ts":1700000000000}
{"user":"dee","ts":1700000004000}
EOF
run skip 0 skip.yaml
same skip want_skip.jsonl out/skip.jsonl
grep -q "skipped 3 bad records" skip.err || fail "skip: no warning with the count: $(cat skip.err)"

# dead-letter: the good records, and the bad ones on src.errors.
bad_job dead dead-letter >dead.yaml
cat >>dead.yaml <<'EOF'
  errors:
    type: file
    inputs: [src.errors]
    path: out/dead-errors.jsonl
EOF
cat >want_dead_errors.jsonl <<'EOF'
{"error":"field 'ts': expected timestamp, got \"yesterday\"","raw":"{\"user\":\"bob\",\"ts\":\"yesterday\"}","location":"data/bad.jsonl:2"}
{"error":"field 'ts': the event time is missing","raw":"{\"user\":\"cy\"}","location":"data/bad.jsonl:3"}
{"error":"invalid JSON: '[' or '{' expected near 'not'","raw":"not json","location":"data/bad.jsonl:4"}
EOF
run dead 0 dead.yaml
same dead want_skip.jsonl out/dead.jsonl
same dead-errors want_dead_errors.jsonl out/dead-errors.jsonl

# ---- a glob over several files, two instances -----------------------------

for k in 1 2 3; do
    echo "{\"k\":$k}" >"data/part-$k.jsonl"
done
cat >glob.yaml <<'EOF'
name: glob
parallelism: 2
sources:
  parts:
    type: file
    path: data/part-*.jsonl
    schema: {k: int}
sinks:
  out:
    type: file
    inputs: [parts]
    path: out/parts.jsonl
EOF
run glob 0 glob.yaml
printf '{"k":1}\n{"k":2}\n{"k":3}\n' >want_parts.jsonl
sort out/parts.jsonl >out/parts.sorted 2>/dev/null
same glob want_parts.jsonl out/parts.sorted

# A missing input file fails the job and names it.
sed -e 's|data/part-\*.jsonl|data/nothing.jsonl|' -e 's|out/parts.jsonl|out/nothing.jsonl|' \
    glob.yaml >missing.yaml
run missing 2 missing.yaml
grep -q "data/nothing.jsonl" missing.err || fail "missing: the file is not named: $(cat missing.err)"

# A missing output directory is made (0700, as Flink's file sink makes
# its directories); a file in its way is refused when the job is planned
# (exit 1, as validate does), naming the path.
sed -e 's|out/parts.jsonl|no/such/dir/parts.jsonl|' glob.yaml >nodir.yaml
run nodir 0 nodir.yaml
[ -s no/such/dir/parts.jsonl ] || fail "nodir: the missing directory was not made and written"
[ "$(stat -c %a no/such/dir)" = 700 ] || fail "nodir: the directory is not 0700: $(stat -c %a no/such/dir)"
: > blocked
sed -e 's|out/parts.jsonl|blocked/parts.jsonl|' glob.yaml >blocked.yaml
run blocked 1 blocked.yaml
grep -q "blocked/parts.jsonl" blocked.err || fail "blocked: the path is not named: $(cat blocked.err)"

# ---- datagen into a file ---------------------------------------------------

cat >datagen.yaml <<'EOF'
name: gen
sources:
  gen:
    type: datagen
    generator: sequence
    events: 10
    keys: 3
    event_time: ts
sinks:
  out:
    type: file
    inputs: [gen]
    path: out/gen.csv
    format: csv
EOF
cat >want_gen.csv <<'EOF'
id,key,value,ts
0,k0,0,1700000000000
1,k1,1,1700000000001
2,k2,2,1700000000002
3,k0,3,1700000000003
4,k1,4,1700000000004
5,k2,5,1700000000005
6,k0,6,1700000000006
7,k1,7,1700000000007
8,k2,8,1700000000008
9,k0,9,1700000000009
EOF
run datagen 0 datagen.yaml
same datagen want_gen.csv out/gen.csv

# Two instances generate the same ids between them.
sed -e 's|^name: gen|name: gen2\nparallelism: 2|' -e 's|out/gen.csv|out/gen2.csv|' datagen.yaml \
    >datagen2.yaml
run datagen2 0 datagen2.yaml
head -1 out/gen2.csv >out/gen2.sorted 2>/dev/null
tail -n +2 out/gen2.csv | sort -t, -k1,1n >>out/gen2.sorted
same datagen2 want_gen.csv out/gen2.sorted

# datagen refuses a schema and unknown generators, with the job file's position.
cat >dgbad.yaml <<'EOF'
name: dgbad
sources:
  gen:
    type: datagen
    generator: sequense
sinks:
  out: {type: discard, inputs: [gen]}
EOF
run dgbad 1 dgbad.yaml
grep -q "dgbad.yaml:5:.*sequence" dgbad.err || fail "dgbad: $(cat dgbad.err)"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); files kept in $TMP" >&2
    exit 1
fi
cd / && rm -rf "$TMP"
echo "file_io: all passed"
