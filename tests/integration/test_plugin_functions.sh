#!/usr/bin/env bash
# tests/integration/test_plugin_functions.sh: scalar functions from a
# plugin (runnel/functions.h) in job-file expressions, with the test
# plugin tests/plugins/ext_functions.c loaded through `plugins:`.
#
# - A filter and a map call haversine_km (float, four floats), initials
#   (a string made with rn_fn_alloc), vowels (an int counted in
#   rn_fn_alloc scratch, in the filter too), nz (called with a null
#   argument: RN_FN_NULL_CALL) and twice; every output row equals what
#   awk computes from the input, and a null argument of a function
#   without RN_FN_NULL_CALL gives null without a call.
# - Aggregates against awk: stddev (with merge), spread (without) and
#   nrows() (no field: add with NULL) per key in tumbling windows, stddev
#   of a nullable field (nulls skipped; a window of nulls only gives
#   null); stddev and nrows() in session windows over rows out of order,
#   so that sessions merge through the plugins' merge.
# - 49999 windows under 1 MB of RocksDB state: stddev and nrows() fold
#   through RocksDB's merge operator (the plugin's merge), spread (no
#   merge) is read and written whole; both equal awk's figures.
# - Across a crash: a job with the plugin aggregate, RocksDB state and
#   checkpoints every 100 ms, SIGKILLed mid-run and restarted, writes
#   what a clean run writes (exactly-once file sink).
# - Refusals, each at the job file's line and column with its message: a
#   function nobody registered (did you mean, and the plugins' functions
#   listed; also for a misspelt built-in), a wrong number of arguments, a
#   type the function's plan refuses (its message; twice), a name another
#   library registered already (libext_functions_dup.so, ext_functions.c
#   built with TEST_DUP), a built-in name, an aggregate without merge in
#   session windows, an aggregate's plan refusing the field's type, an
#   aggregate declaring a string result, an unknown aggregate (did you
#   mean, the plugins' listed).
# - No sanitizer report in any log (under the ASan build).
#
# Env: RUNNEL, RN_PLUGINS (the built test plugins), RN_TEST_TMP.
set -u
: "${RUNNEL:?}" "${RN_PLUGINS:?}"
mkdir -p "${RN_TEST_TMP:-/tmp}"
TMP=$(mktemp -d "${RN_TEST_TMP:-/tmp}/plugin_fn.XXXXXX")
cd "$TMP" || exit 1
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

# id, a name (null every 7th; 7 vowels or 6), a position around Berlin,
# opt (null every 3rd), x (null every 5th, and always where lon is 7).
awk 'BEGIN { srand(7); for (i = 0; i < 2000; i++) {
  split("ada king lovelace|ada byron lovelace|grace brewster hopper", names, "|")
  name = (i % 7 == 0) ? "null" : sprintf("\"%s\"", names[i % 3 + 1])
  opt = (i % 3 == 0) ? "null" : i % 50
  lat = sprintf("%.4f", 40 + rand() * 25); lon = int(rand() * 40) - 5
  x = (i % 5 == 0 || lon == 7) ? "null" : sprintf("%.3f", (lat - 40) * 3)
  printf "{\"id\":%d,\"name\":%s,\"lat\":%s,\"lon\":%d,\"opt\":%s,\"ts\":%.0f,\"x\":%s}\n", i, name, lat, lon, opt, 1700000000000 + i, x } }' > in.jsonl

job() { # FILE PLUGINS WHERE SELECT
  cat > "$1" <<YAML
name: plugin-functions
plugins: $2
sources:
  src:
    type: file
    path: in.jsonl
    schema: {id: int, name: string, lat: float, lon: int, opt: int, ts: timestamp, x: float}
    event_time: ts
operators:
  near:
    type: filter
    inputs: [src]
    where: $3
  out:
    type: map
    inputs: [near]
    select: $4
sinks:
  file: {type: file, inputs: [out], path: ./$1.jsonl}
YAML
}
LIB=$RN_PLUGINS/libext_functions.so
job ok.yaml "[$LIB]" "haversine_km(lat, to_float(lon), 52.52, 13.0) < 800 && nz(vowels(name), 7) == 7" \
  "{id: id, m: 'round(haversine_km(lat, to_float(lon), 52.52, 13.0) * 1000)', ini: 'initials(name)', v: 'nz(opt, -1)', t: 'twice(opt)', vw: 'vowels(name)'}"
"$RUNNEL" run ok.yaml --quiet > ok.log 2>&1
rc=$?
# The same with awk: haversine, rounded to metres (half away from zero).
awk -F'[:,}]' 'function asin(x) { return atan2(x, sqrt(1 - x * x)) }
  { for (i = 1; i < NF; i++) { gsub(/[{"]/, "", $i) } ; id = $2; name = $4; lat = $6; lon = $8; opt = $10
    r = 3.141592653589793 / 180; la1 = lat * r; lo1 = lon * r; la2 = 52.52 * r; lo2 = 13 * r
    h = sin((la2 - la1) / 2) ^ 2 + cos(la1) * cos(la2) * sin((lo2 - lo1) / 2) ^ 2
    d = 2 * 6371 * asin(sqrt(h)); if (d >= 800) next
    ini = "null"; if (name != "null") { n = split(name, w, " "); ini = ""; for (k = 1; k <= n; k++) ini = ini toupper(substr(w[k], 1, 1)); ini = "\"" ini "\"" }
    v = (opt == "null") ? -1 : opt; t = (opt == "null") ? "null" : 2 * opt
    vw = "null"; if (name != "null") { vw = gsub(/[aeiouAEIOU]/, "", name) }
    if (vw != "null" && vw != 7) next
    printf "%s %.0f %s %s %s %s\n", id, int(d * 1000 + 0.5), ini, v, t, vw }' in.jsonl | sort > want.txt
sed -E 's/^\{"id":([0-9]+),"m":([0-9.e+]+),"ini":("[A-Z]*"|null),"v":(-?[0-9]+),"t":(-?[0-9]+|null),"vw":([0-9]+|null)\}$/\1 \2 \3 \4 \5 \6/' ok.yaml.jsonl 2>/dev/null |
  awk '{ printf "%s %.0f %s %s %s %s\n", $1, $2, $3, $4, $5, $6 }' | sort > got.txt
n=$(wc -l < want.txt)
check '[ $rc -eq 0 ] && [ "$n" -gt 100 ] && [ "$n" -lt 2000 ] && cmp -s got.txt want.txt' \
  "filter and map with plugin functions give what awk computes ($(wc -l < got.txt) of $n rows; rc $rc: $(head -c 300 ok.log); first difference: $(diff got.txt want.txt 2>/dev/null | sed -n 2p))"
check 'grep -q "\"ini\":null" ok.yaml.jsonl && grep -q "\"t\":null,\\?" ok.yaml.jsonl && grep -q "\"v\":-1" ok.yaml.jsonl' \
  "null arguments: null without RN_FN_NULL_CALL, the function's own answer with it"

# ---- aggregates ----------------------------------------------------------------
win_job() { # FILE WINDOW AGGREGATES [INPUT]
  cat > "$1" <<YAML
name: plugin-aggregates
plugins: [$LIB]
state: {backend: rocksdb, memory: 16MB}
sources:
  src:
    type: file
    path: ${4:-in.jsonl}
    schema: {id: int, name: string, lat: float, lon: int, opt: int, ts: timestamp, x: float}
    event_time: ts
    watermark: {max_out_of_orderness: 2s}
operators:
  w:
    type: window_aggregate
    inputs: [src]
    key: [lon]
    window: $2
    aggregates: $3
sinks:
  file: {type: file, inputs: [w], path: ./$1.jsonl}
YAML
}
norm() { sed -E 's/^\{"lon":(-?[0-9]+),"window_start":([0-9]+),"window_end":[0-9]+,(.*)\}$/\1 \2 \3/; s/"[a-z]+"://g; s/,/ /g' "$1" |
  awk '{ printf "%s %s", $1, $2; for (i = 3; i <= NF; i++) printf($i == "null" ? " %s" : " %.4f", $i); print "" }' | sort; }
win_job tumble.yaml "{type: tumbling, size: 500ms}" "{n: count(), sd: stddev(lat), sp: spread(lat), r: nrows(), sx: stddev(x)}"
"$RUNNEL" run tumble.yaml --quiet > tumble.log 2>&1
rc=$?
# stddev(x) skips x's nulls: null where a window has no x (lon 7).
awk -F'[:,}]' '{ lat = $6; lon = $8; d = $12 - 1700000000000; k = lon SUBSEP (d - d % 500)
    n[k]++; s[k] += lat; q[k] += lat * lat; if (!(k in lo) || lat < lo[k]) lo[k] = lat; if (!(k in hi) || lat > hi[k]) hi[k] = lat
    if ($14 != "null") { nx[k]++; sx[k] += $14; qx[k] += $14 * $14 } }
  END { for (k in n) { split(k, p, SUBSEP); m = s[k] / n[k]; v = q[k] / n[k] - m * m; if (v < 0) v = 0
    vx = "null"; if (nx[k] > 0) { mx = sx[k] / nx[k]; vx = qx[k] / nx[k] - mx * mx; vx = sprintf("%.4f", sqrt(vx > 0 ? vx : 0)) }
    printf "%s %.0f %.4f %.4f %.4f %.4f %s\n", p[1], 1700000000000 + p[2], n[k], sqrt(v), hi[k] - lo[k], n[k], vx } }' in.jsonl | sort > want_t.txt
norm tumble.yaml.jsonl > got_t.txt
check '[ $rc -eq 0 ] && grep -q " null$" want_t.txt && cmp -s got_t.txt want_t.txt' \
  "tumbling windows: stddev, spread and nrows() per key and window as awk computes them, nulls skipped (a window of nulls only: null) ($(wc -l < got_t.txt) of $(wc -l < want_t.txt) windows; rc $rc: $(head -c 300 tumble.log); $(diff got_t.txt want_t.txt | sed -n 2p))"
# The rows again, each block of 500 ms in reverse: within a block a key's
# session grows backwards, and the last rows of a block (read last) bridge
# it to the session of the block read before, so sessions merge through
# the plugins' merge (in order, sessions would only grow).
awk '{ b = int((NR - 1) / 500); blk[b] = blk[b] $0 "\n"; if (b > nb) nb = b }
  END { for (b = 0; b <= nb; b++) { n = split(blk[b], l, "\n"); for (i = n - 1; i >= 1; i--) print l[i] } }' \
  in.jsonl > shuffled.jsonl
win_job sess.yaml "{type: session, gap: 200ms}" "{n: count(), sd: stddev(lat), r: nrows()}" shuffled.jsonl
"$RUNNEL" run sess.yaml --quiet > sess.log 2>&1
rc=$?
# A session per key ends 200 ms after its last row: awk cuts them the
# same way from the rows in time order (1 ms apart, keys at random).
awk -F'[:,}]' '{ lat = $6; lon = $8; d = $12 - 1700000000000
    if (!(lon in last) || d - last[lon] >= 200) { ns++; cur[lon] = ns; f[ns] = d; key[ns] = lon }
    last[lon] = d; k = cur[lon]; n[k]++; s[k] += lat; q[k] += lat * lat }
  END { for (k = 1; k <= ns; k++) { m = s[k] / n[k]; v = q[k] / n[k] - m * m; if (v < 0) v = 0
    printf "%s %.0f %.4f %.4f %.4f\n", key[k], 1700000000000 + f[k], n[k], sqrt(v), n[k] } }' in.jsonl | sort > want_s.txt
norm sess.yaml.jsonl > got_s.txt
check '[ $rc -eq 0 ] && [ -s want_s.txt ] && cmp -s got_s.txt want_s.txt' \
  "session windows, rows out of order: stddev and nrows() through the plugins' merge as sessions join ($(wc -l < got_s.txt) of $(wc -l < want_s.txt) sessions; rc $rc: $(head -c 300 sess.log); $(diff got_s.txt want_s.txt | sed -n 2p))"
win_job nomerge.yaml "{type: session, gap: 200ms}" "{sp: spread(lat)}"
"$RUNNEL" run nomerge.yaml --quiet > nomerge.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "nomerge.yaml:17:22: operator .w. aggregate .sp.: spread() has no merge function, which session windows need" nomerge.log' \
  "an aggregate without merge is refused in session windows ($(head -1 nomerge.log | cut -c1-200))"
win_job aggtype.yaml "{type: tumbling, size: 1s}" "{sd: stddev(name)}"
"$RUNNEL" run aggtype.yaml --quiet > aggtype.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "aggtype.yaml:17:29: operator .w. aggregate .sd.: stddev(): needs a float field, got string" aggtype.log' \
  "an aggregate's plan refuses the field's type ($(head -1 aggtype.log | cut -c1-200))"

win_job strres.yaml "{type: tumbling, size: 1s}" "{l: longest(name)}"
"$RUNNEL" run strres.yaml --quiet > strres.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "strres.yaml:17:[0-9]*: operator .w. aggregate .l.: longest(): an aggregate.s result must be int, float, bool or timestamp, not string" strres.log' \
  "an aggregate whose plan declares a string result is refused ($(head -1 strres.log | cut -c1-200))"
win_job aggunk.yaml "{type: tumbling, size: 1s}" "{sd: stdev(lat)}"
"$RUNNEL" run aggunk.yaml --quiet > aggunk.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "aggunk.yaml:17:[0-9]*: operator .w. aggregate .sd.: unknown aggregate function .stdev.; did you mean .stddev.? (expected count, .*, or from plugins: .*spread" aggunk.log' \
  "an unknown aggregate lists the plugins' ($(head -1 aggunk.log | cut -c1-200))"

# ---- more windows than state.memory: RocksDB's merge operator --------------------
# 50k windows open at once under 1 MB: accumulators leave the cache, a
# merge-capable aggregate's records then fold into zeroed partial
# accumulators that RocksDB folds into the stored ones with the plugin's
# merge; one without merge (spread) is read and written whole instead.
# datagen's arithmetic: key k gets ids k, k+K, k+2K, k+3K, value id % 1000.
BK=49999
big_job() { # FILE AGGREGATES
  cat > "$1" <<YAML
name: plugin-agg-big
plugins: [$LIB]
state: {backend: rocksdb, dir: ./$1.state, memory: 1MB}
sources:
  gen: {type: datagen, generator: sequence, events: $((BK * 4)), keys: $BK, interval: 1us, event_time: ts}
operators:
  f: {type: map, inputs: [gen], select: {key: key, v: 'to_float(value)', ts: ts}}
  w:
    type: window_aggregate
    inputs: [f]
    key: [key]
    window: {type: tumbling, size: 1h}
    aggregates: $2
sinks:
  out: {type: file, inputs: [w], path: ./$1.csv, format: csv}
YAML
}
awk -v K=$BK 'BEGIN { for (k = 0; k < K; k++) { s = 0; q = 0; lo = 1e9; hi = -1
    for (j = 0; j < 4; j++) { v = (k + j * K) % 1000; s += v; q += v * v; if (v < lo) lo = v; if (v > hi) hi = v }
    m = s / 4; var = q / 4 - m * m; if (var < 0) var = 0
    printf "k%d 4 %.4f 4 %.4f\n", k, sqrt(var), hi - lo } }' | sort > want_b.txt
big_job big1.yaml "{n: count(), sd: stddev(v), r: nrows()}"
"$RUNNEL" run big1.yaml --quiet > big1.log 2>&1
rc1=$?
big_job big2.yaml "{sp: spread(v)}"
"$RUNNEL" run big2.yaml --quiet > big2.log 2>&1
rc2=$?
tail -n +2 big1.yaml.csv 2>/dev/null | awk -F, '{ printf "%s %d %.4f %d\n", $1, $4, $5, $6 }' | sort > got_b1.txt
cut -d' ' -f1-4 want_b.txt | cmp -s - got_b1.txt
ok1=$?
# spread's rows in the same key order as big1's.
tail -n +2 big2.yaml.csv 2>/dev/null | awk -F, '{ printf "%s %.4f\n", $1, $4 }' | sort > got_b2.txt
awk '{ print $1, $5 }' want_b.txt | cmp -s - got_b2.txt
ok2=$?
check '[ $rc1 -eq 0 ] && [ $ok1 -eq 0 ]' \
  "$BK windows under 1 MB of state: stddev and nrows() through RocksDB's merge operator as awk computes them ($(wc -l < got_b1.txt) rows; rc $rc1: $(head -c 200 big1.log); $(cut -d' ' -f1-4 want_b.txt | diff - got_b1.txt | sed -n 2,3p | tr '\n' ' '))"
check '[ $rc2 -eq 0 ] && [ $ok2 -eq 0 ]' \
  "the same windows with spread (no merge): read and written whole, as awk computes them ($(wc -l < got_b2.txt) rows; rc $rc2: $(head -c 200 big2.log); $(awk '{ print $1, $5 }' want_b.txt | diff - got_b2.txt | sed -n 2,3p | tr '\n' ' '))"

# ---- an aggregate's accumulators across a crash ------------------------------------
ck_job() { # DIR
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: plugin-agg-crash
plugins: [$LIB]
checkpoints: {interval: 100ms, dir: ./ckpt}
state: {backend: rocksdb, dir: ./state, memory: 16MB}
sources:
  gen: {type: datagen, generator: sequence, events: 30000, rate: 10000, keys: 20, event_time: ts}
operators:
  f: {type: map, inputs: [gen], select: {key: key, v: 'to_float(value)', ts: ts}}
  w:
    type: window_aggregate
    inputs: [f]
    key: [key]
    window: {type: tumbling, size: 500ms}
    aggregates: {n: count(), sd: stddev(v)}
sinks:
  out: {type: file, inputs: [w], path: ./out.jsonl}
YAML
}
ck_job clean
(cd clean && "$RUNNEL" run job.yaml --quiet > log 2>&1)
rc0=$?
ck_job crash
(cd crash && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
# Killed once a checkpoint completed (the deadline only catches a hang).
for _ in $(seq 3000); do
  ls crash/ckpt 2>/dev/null | grep -qE '^chk-[0-9]+$' && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -KILL $pid
wait $pid 2>/dev/null
(cd crash && "$RUNNEL" run job.yaml > log2 2>&1)
rc1=$?
n=$(wc -l < clean/out.jsonl 2>/dev/null || echo 0)
check '[ $rc0 -eq 0 ] && [ $rc1 -eq 0 ] && [ "$n" -gt 100 ] && grep -q "resum\|restor" crash/log2 && [ "$(sort crash/out.jsonl)" = "$(sort clean/out.jsonl)" ]' \
  "killed and restarted from a checkpoint, the plugin aggregate gives the clean run's windows ($n windows; rc $rc0 $rc1: $(grep -i -m1 "resum\|restor" crash/log2 | cut -c1-120))"

refused() { # NAME PATTERN PLUGINS WHERE SELECT
  local name=$1 pat=$2
  job "$name.yaml" "$3" "$4" "$5"
  "$RUNNEL" run "$name.yaml" --quiet > "$name.log" 2>&1
  local rc=$?
  check '[ $rc -ne 0 ] && grep -q -- "$pat" "$name.log" && [ ! -s "$name.yaml.jsonl" ]' \
    "$name: refused with \"$(head -1 "$name.log" | cut -c1-220)\""
}
refused unknown "unknown.yaml:13:12: operator 'near' where: unknown function 'haversine'; did you mean 'haversine_km'? (functions from plugins: .*initials" "[$LIB]" "haversine(lat) < 1" "{id: id}"
refused unknown2 "unknown2.yaml:13:12: operator 'near' where: unknown function 'lowr'; did you mean 'lower'? (functions from plugins: .*haversine_km" "[$LIB]" "lowr(name) == 'x'" "{id: id}"
refused count "count.yaml:13:12: operator 'near' where: function 'haversine_km' takes 4 arguments, got 3" "[$LIB]" "haversine_km(lat, lon, 1) < 1" "{id: id}"
refused type "type.yaml:17:[0-9]*: operator 'out' select 'i': function 'initials': takes a string, got int" "[$LIB]" "true" "{i: 'initials(id)'}"
refused type2 "type2.yaml:13:12: operator 'near' where: function 'haversine_km': argument 2 must be a float, got int (to_float() converts)" "[$LIB]" "haversine_km(lat, lon, 1.0, 2.0) < 1" "{id: id}"
refused clash "clash.yaml:2:[0-9]*: .*scalar function 'twice' is already registered by .*libext_functions.so" \
  "[$LIB, $RN_PLUGINS/libext_functions_dup.so]" "true" "{id: id}"
refused builtin "builtin.yaml:2:[0-9]*: .*'lower' is runnel's own scalar function: a plugin cannot replace it" \
  "[$RN_PLUGINS/libext_functions_builtin.so]" "true" "{id: id}"
check '! grep -q "AddressSanitizer\|LeakSanitizer\|runtime error" *.log' "no sanitizer report"

[ $fail -eq 0 ] && cd / && rm -rf "$TMP"
exit $fail
