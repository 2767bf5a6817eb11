#!/usr/bin/env bash
# tests/integration/test_plugin_format.sh: record formats from plugins
# (include/runnel/format.h, docs/plugins.md "Formats"), with the test
# plugin tests/plugins/ext_format.c: "kv" (id=3|name=ab|score=1.5, decode
# and encode), "kvdec" (decode only; "#fail" records fail it with
# RN_EINVAL) and "kvenc" (encode only).
#
# Every expected output is built here with awk, not by runnel. The
# records have every field type, nulls (absent in kv, null in JSON),
# fields in another order than the schema's, and strings that need kv's
# escapes ('|', '=', '\', a line break) or JSON's ('"', '\', a line break).
#
# - kv file -> filter -> JSON file: exactly the records the filter keeps,
#   each field decoded (an int into the float field widened: score=3 is
#   3.0).
# - JSON file -> kv file: exactly the kv text (schema order, nulls left
#   out, escapes); that kv file read back -> JSON: the JSON input again.
# - kv to stdout: the same kv lines.
# - bad records of a kv file, each with its reason (the plugin's, or
#   runnel's naming the field a setter refused: a string into an int, a
#   float with a fraction into an int, a string into a bool, an int a
#   float cannot hold exactly): dead-letter writes exactly the expected
#   error/raw/location rows and keeps the good ones; skip keeps the good
#   ones; fail stops the job at the first bad line with its reason; an
#   error other than RN_EDATA from decode stops the job with the line and
#   the plugin's message even with on_error: dead-letter.
# - Kafka on the embedded cluster: a sink with format kv writes the kv
#   text as the message value (read back raw: exactly the kv lines), a
#   source with format kv reads it back into the original records; JSON
#   messages read as kv are dead letters with the plugin's reason and a
#   TOPIC/PARTITION@OFFSET location.
# - refusals at the format's FILE:LINE:COL: an unknown format (the message
#   lists the built-in formats and the registered ones, with a
#   did-you-mean; the Kafka source's built-ins include raw; without the
#   library none is registered), a decode-only format in a file sink and
#   in a Kafka sink, an encode-only format in a file source.
#
# Env: RUNNEL, RN_PLUGINS (the built test plugins), RN_TEST_TMP.
set -u
: "${RUNNEL:?}" "${RN_PLUGINS:?}"
LIB=$RN_PLUGINS/libext_format.so
mkdir -p "${RN_TEST_TMP:-/tmp}"
TMP=$(mktemp -d "${RN_TEST_TMP:-/tmp}/plugin_format.XXXXXX")
cd "$TMP" || exit 1
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
# same WANT GOT: the files hold the same lines, in any order.
same() { [ -s "$1" ] && [ "$(sort "$1")" = "$(sort "$2" 2>/dev/null)" ]; }
SCHEMA='{id: int, delta: int, name: string, score: float, ok: bool, ts: timestamp}'

# ---- the data ----------------------------------------------------------------------
# Per record i: in.kv (kv, fields in schema order for even i, reversed for
# odd i), want_all.jsonl (JSON, every field, schema order), want.kv (kv,
# schema order, nulls left out) and want_filtered.jsonl (id % 3 != 0).
awk -v N=300 'BEGIN {
  for (i = 1; i <= N; i++) {
    n = 0
    k[++n] = "id"; kv[n] = i; js[n] = i
    k[++n] = "delta"
    if (i % 13 == 0) { kv[n] = ""; js[n] = "null" } else { d = (i * 37) % 101 - 50; kv[n] = d; js[n] = d }
    k[++n] = "name"; c = i % 7
    if (c == 0)      { kv[n] = "two\\nlines" i;  js[n] = "\"two\\nlines" i "\"" }
    else if (c == 1) { kv[n] = "a\\|b" i;        js[n] = "\"a|b" i "\"" }
    else if (c == 2) { kv[n] = "k\\=v" i;        js[n] = "\"k=v" i "\"" }
    else if (c == 3) { kv[n] = "back\\\\slash" i; js[n] = "\"back\\\\slash" i "\"" }
    else if (c == 4) { kv[n] = "=";              js[n] = "\"\"" }
    else if (c == 5) { kv[n] = "";               js[n] = "null" }
    else             { kv[n] = "say \"hi\" " i;  js[n] = "\"say \\\"hi\\\" " i "\"" }
    k[++n] = "score"
    if (i % 10 == 9)     { kv[n] = ""; js[n] = "null" }
    else if (i % 4 == 0) { kv[n] = i / 4; js[n] = (i / 4) ".0" }
    else                 { kv[n] = i / 4; js[n] = i / 4 }
    k[++n] = "ok"
    if (i % 3 == 0) { kv[n] = "true"; js[n] = "true" } else if (i % 3 == 1) { kv[n] = "false"; js[n] = "false" } else { kv[n] = ""; js[n] = "null" }
    k[++n] = "ts"; t = sprintf("%.0f", 1700000000000 + i * 1000); kv[n] = t; js[n] = t
    # kv text of field j: "" for a null; the empty string is kv[j] == "=".
    line = ""; canon = ""; json = ""
    for (j = 1; j <= n; j++) {
      f = (i % 2 == 0) ? j : n + 1 - j
      if (kv[f] != "") line = line (line == "" ? "" : "|") k[f] "=" (kv[f] == "=" ? "" : kv[f])
      if (kv[j] != "") canon = canon (canon == "" ? "" : "|") k[j] "=" (kv[j] == "=" ? "" : kv[j])
      json = json (j == 1 ? "{" : ",") "\"" k[j] "\":" js[j]
    }
    json = json "}"
    print line > "in.kv"; print canon > "want.kv"; print json > "want_all.jsonl"
    if (i % 3 != 0) print json > "want_filtered.jsonl"
  }
}'

# ---- kv -> filter -> JSON, JSON -> kv, kv -> JSON ----------------------------------------
cat > rt.yaml <<YAML
name: format-roundtrip
parallelism: 2
plugins: [$LIB]
sources:
  kvin: {type: file, path: in.kv, format: kv, schema: $SCHEMA}
  jsin: {type: file, path: want_all.jsonl, schema: $SCHEMA}
operators:
  keep: {type: filter, inputs: [kvin], where: id % 3 != 0}
sinks:
  json_out: {type: file, inputs: [keep], path: ./filtered.jsonl}
  kv_out: {type: file, inputs: [jsin], path: ./out.kv, format: kv}
YAML
"$RUNNEL" run rt.yaml --quiet > rt.log 2>&1
rc=$?
check '[ $rc -eq 0 ]' "a job reading and writing format kv runs (rc $rc: $(head -c 300 rt.log))"
check 'same want_filtered.jsonl filtered.jsonl && [ "$(wc -l < filtered.jsonl)" -eq 200 ]' \
  "kv file -> filter -> JSON: exactly the records kept, every type, nulls and escapes decoded"
check 'same want.kv out.kv && [ "$(wc -l < out.kv)" -eq 300 ]' \
  "JSON -> kv file: exactly the kv text (schema order, nulls left out, escaped)"

cat > back.yaml <<YAML
name: format-back
plugins: [$LIB]
sources:
  kvin: {type: file, path: out.kv, format: kv, schema: $SCHEMA}
sinks:
  json_out: {type: file, inputs: [kvin], path: ./back.jsonl}
  shown: {type: stdout, inputs: [kvin], format: kv}
YAML
"$RUNNEL" run back.yaml --quiet > back.out 2> back.log
rc=$?
check '[ $rc -eq 0 ] && same want_all.jsonl back.jsonl' \
  "the kv written read back -> JSON: the JSON input again (rc $rc: $(head -c 300 back.log))"
check 'same want.kv back.out' "a stdout sink with format kv prints the kv lines"

# ---- bad records ---------------------------------------------------------------------
cat > bad.kv <<'EOF'
id=1|ts=1700000000000|name=good\|one
id=abc|ts=5
garbage
id=4|ts=6|name=bad\q
id=1.5|ts=7
id=7|ok=maybe|ts=8
id=8|ts=9|score=9007199254740993
id=9|ts=1700000009000|score=2
EOF
cat > want_bad_errors.jsonl <<'EOF'
{"error":"field 'id': expected int, got string \"abc\"","raw":"id=abc|ts=5","location":"bad.kv:2"}
{"error":"kv: a field without '=': 'garbage'","raw":"garbage","location":"bad.kv:3"}
{"error":"kv: unknown escape: '\\q'","raw":"id=4|ts=6|name=bad\\q","location":"bad.kv:4"}
{"error":"field 'id': expected int, got float 1.5","raw":"id=1.5|ts=7","location":"bad.kv:5"}
{"error":"field 'ok': expected bool, got string \"maybe\"","raw":"id=7|ok=maybe|ts=8","location":"bad.kv:6"}
{"error":"field 'score': expected float, got int 9007199254740993, which a float cannot hold exactly","raw":"id=8|ts=9|score=9007199254740993","location":"bad.kv:7"}
EOF
cat > want_bad_good.jsonl <<'EOF'
{"id":1,"delta":null,"name":"good|one","score":null,"ok":null,"ts":1700000000000}
{"id":9,"delta":null,"name":null,"score":2.0,"ok":null,"ts":1700000009000}
EOF
bad_job() { # NAME ON_ERROR FORMAT INPUT
  cat > "$1.yaml" <<YAML
name: format-bad
plugins: [$LIB]
sources:
  src: {type: file, path: $4, format: $3, schema: $SCHEMA, on_error: $2}
sinks:
  out: {type: file, inputs: [src], path: ./$1.jsonl}
YAML
  if [ "$2" = dead-letter ]; then
    echo "  errors: {type: file, inputs: [src.errors], path: ./$1.errors.jsonl}" >> "$1.yaml"
  fi
}
bad_job dead dead-letter kv bad.kv
"$RUNNEL" run dead.yaml --quiet > dead.log 2>&1
rc=$?
check '[ $rc -eq 0 ] && same want_bad_good.jsonl dead.jsonl' \
  "dead-letter: the good records go on (rc $rc: $(head -c 300 dead.log))"
check 'same want_bad_errors.jsonl dead.errors.jsonl' \
  "dead-letter: each bad record with its reason, raw text and FILE:LINE ($(head -1 dead.errors.jsonl 2>/dev/null | cut -c1-200))"
bad_job skip skip kv bad.kv
"$RUNNEL" run skip.yaml --quiet > skip.log 2>&1
rc=$?
check '[ $rc -eq 0 ] && same want_bad_good.jsonl skip.jsonl' "skip: the good records go on (rc $rc)"
bad_job stop fail kv bad.kv
"$RUNNEL" run stop.yaml --quiet > stop.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -qF "bad.kv:2: field '"'id'"': expected int, got string \"abc\"" stop.log && [ ! -e stop.jsonl ]' \
  "fail: the job stops at the first bad line with its reason, no output ($(head -c 300 stop.log))"
printf 'id=1|ts=1700000000000\nid=2|ts=1700000001000\n#fail here\nid=3|ts=1700000002000\n' > failing.kv
bad_job hard dead-letter kvdec failing.kv
"$RUNNEL" run hard.yaml --quiet > hard.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -qF "failing.kv:3: format '"'kvdec'"': decode failed: kv: asked to fail" hard.log' \
  "an error other than RN_EDATA from decode stops the job with the line and the plugin's message, not a dead letter ($(head -c 300 hard.log))"

# ---- Kafka on the embedded cluster -------------------------------------------------------
printf '{"id":%d,"name":"n%d"}\n' 1 1 2 2 3 3 4 4 5 5 > small.jsonl
cat > kafka.yaml <<YAML
name: format-kafka
parallelism: 2
plugins: [$LIB]
sources:
  kvin: {type: file, path: in.kv, format: kv, schema: $SCHEMA}
  jsin: {type: file, path: small.jsonl, schema: {id: int, name: string}}
  back:
    type: kafka
    brokers: embedded
    topic: kv_records
    bounded: latest
    format: kv
    schema: $SCHEMA
  raw:
    type: kafka
    brokers: embedded
    topic: kv_records
    group: raw-reader
    bounded: latest
    format: raw
    schema: {v: string}
  notkv:
    type: kafka
    brokers: embedded
    topic: json_records
    bounded: latest
    format: kv
    on_error: dead-letter
    schema: {id: int, name: string}
sinks:
  to_kv: {type: kafka, inputs: [kvin], brokers: embedded, topic: kv_records, format: kv}
  to_json: {type: kafka, inputs: [jsin], brokers: embedded, topic: json_records, format: json}
  back_out: {type: file, inputs: [back], path: ./kafka_back.jsonl}
  raw_out: {type: file, inputs: [raw], path: ./kafka_raw.jsonl}
  notkv_out: {type: file, inputs: [notkv], path: ./kafka_notkv.jsonl}
  notkv_err: {type: file, inputs: [notkv.errors], path: ./kafka_notkv_errors.jsonl}
YAML
timeout 300 "$RUNNEL" run kafka.yaml --quiet > kafka.log 2>&1
rc=$?
check '[ $rc -eq 0 ]' "kv through Kafka (embedded) runs (rc $rc: $(head -c 300 kafka.log))"
# jesc: JSON string escapes of the text, char by char (awk's gsub treats
# backslashes in replacements differently from one awk to another).
JESC='function jesc(s,  o, i, c) { o = ""; for (i = 1; i <= length(s); i++) { c = substr(s, i, 1)
  o = o ((c == "\\" || c == "\"") ? "\\" c : c) }; return o }'
awk "$JESC"'{ print "{\"v\":\"" jesc($0) "\"}" }' want.kv > want_raw.jsonl
check 'same want_raw.jsonl kafka_raw.jsonl' \
  "the Kafka sink's message values are exactly the kv text, no line break (read back raw)"
check 'same want_all.jsonl kafka_back.jsonl' "a Kafka source with format kv reads the records back"
sed 's/"location":"json_records\/[0-9]*@[0-9]*"}$/"location":"LOC"}/' kafka_notkv_errors.jsonl > notkv_errors.jsonl 2>/dev/null
awk -v q="'" "$JESC"'{ m = "kv: a field without " q "=" q ": " q $0 q
  print "{\"error\":\"" jesc(m) "\",\"raw\":\"" jesc($0) "\",\"location\":\"LOC\"}" }' \
  small.jsonl > want_notkv_errors.jsonl
check 'same want_notkv_errors.jsonl notkv_errors.jsonl && [ ! -s kafka_notkv.jsonl ]' \
  "JSON messages read as kv are dead letters with the plugin's reason and TOPIC/PARTITION@OFFSET ($(head -1 kafka_notkv_errors.jsonl 2>/dev/null | cut -c1-200))"

# ---- refusals at the job file's position ----------------------------------------------------
refusal() { # NAME SOURCE-FORMAT SINK-FORMAT [PLUGINS]
  cat > "$1.yaml" <<YAML
name: format-refusal
plugins: ${4:-[$LIB]}
sources:
  src:
    type: file
    path: in.kv
    format: $2
    schema: $SCHEMA
sinks:
  out:
    type: file
    inputs: [src]
    path: ./$1.out
    format: $3
YAML
  "$RUNNEL" run "$1.yaml" --quiet > "$1.log" 2>&1
  echo $?
}
rc=$(refusal unknown kvx json)
check '[ "$rc" -ne 0 ] && grep -qF "unknown.yaml:7:13: file source '"'src'"': unknown format '"'kvx'"': the built-in ones are json, csv; registered by plugins: kv, kvdec, kvenc; did you mean '"'kv'"'?" unknown.log' \
  "an unknown format is refused at its FILE:LINE:COL, listing the built-in and registered ones ($(head -c 300 unknown.log))"
rc=$(refusal nolib kv json "[]")
check '[ "$rc" -ne 0 ] && grep -q "nolib.yaml:7:13: file source .src.: unknown format .kv.: .*registered by plugins: none" nolib.log' \
  "without the library, kv is unknown and none is registered ($(head -c 300 nolib.log))"
rc=$(refusal decsink kv kvdec)
check '[ "$rc" -ne 0 ] && grep -qF "decsink.yaml:14:13: file sink '"'out'"': format '"'kvdec'"' cannot encode" decsink.log && [ ! -e decsink.out ]' \
  "a decode-only format in a file sink is refused at its FILE:LINE:COL ($(head -c 300 decsink.log))"
rc=$(refusal encsrc kvenc json)
check '[ "$rc" -ne 0 ] && grep -qF "encsrc.yaml:7:13: file source '"'src'"': format '"'kvenc'"' cannot decode" encsrc.log' \
  "an encode-only format in a file source is refused at its FILE:LINE:COL ($(head -c 300 encsrc.log))"
cat > kref.yaml <<YAML
name: format-kafka-refusal
plugins: [$LIB]
sources:
  src: {type: kafka, brokers: embedded, topic: t, bounded: latest, format: kxv, schema: {v: string}}
sinks:
  out:
    type: kafka
    inputs: [src]
    brokers: embedded
    topic: u
    format: kvdec
YAML
"$RUNNEL" run kref.yaml --quiet > kref.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -qF "kref.yaml:4:76: kafka source '"'src'"': unknown format '"'kxv'"': the built-in ones are json, csv, raw; registered by plugins: kv, kvdec, kvenc" kref.log' \
  "an unknown format in a Kafka source is refused at its FILE:LINE:COL, raw among the built-ins ($(head -c 300 kref.log))"
sed -i 's/format: kxv/format: kv/' kref.yaml
"$RUNNEL" run kref.yaml --quiet > kref2.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -qF "kref.yaml:11:13: kafka sink '"'out'"': format '"'kvdec'"' cannot encode" kref2.log' \
  "a decode-only format in a Kafka sink is refused at its FILE:LINE:COL ($(head -c 300 kref2.log))"

[ $fail -eq 0 ] && rm -rf "$TMP"
exit $fail
