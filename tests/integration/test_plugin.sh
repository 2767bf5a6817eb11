#!/usr/bin/env bash
# tests/integration/test_plugin.sh: operators in C from shared libraries
# (type: plugin; include/runnel/plugin.h, docs/plugins.md), with the test
# plugin tests/plugins/test_ops.c.
#
# - threshold, parallelism 2, keyed: every record reaches the main or the
#   side output as the operator decided, with the config's threshold; each
#   instance's finish() emits how many records it saw, and the counts add
#   up to the input (per-instance data from open to finish).
# - doubler, no plan: the main output has the input's schema, a copy of
#   the record with one field changed.
# - refusals, each with the job file's position and a message that says
#   what to do: a missing library, another ABI, no init function, a symbol
#   no runnel has (RTLD_NOW), an operator the library lacks, a library
#   others can write, a config the operator's plan refuses; a process()
#   failure stops the job with the operator's message.
#
# Env: RUNNEL, RN_PLUGINS (the built test plugins), RN_TEST_TMP.
set -u
: "${RUNNEL:?}" "${RN_PLUGINS:?}"
mkdir -p "${RN_TEST_TMP:-/tmp}"
TMP=$(mktemp -d "${RN_TEST_TMP:-/tmp}/plugin.XXXXXX")
cd "$TMP" || exit 1
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

awk 'BEGIN { for (i = 0; i < 1000; i++)
  printf "{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}\n", i, i % 7, i % 100, 1700000000000 + i }' > in.jsonl
job() { # FILE OPERATOR CONFIG [LIBRARY] [EXTRA-SOURCE-PATH]
  cat > "$1" <<YAML
name: plugin-test
parallelism: 2
sources:
  src:
    type: file
    path: ${5:-in.jsonl}
    schema: {id: int, key: string, value: int, ts: timestamp}
    event_time: ts
operators:
  op:
    type: plugin
    inputs: [src]
    library: ${4:-$RN_PLUGINS/libtest_ops.so}
    operator: $2
    key: [key]
    config: $3
sinks:
  out: {type: file, inputs: [op], path: ./$1.out.jsonl}
YAML
  if [ "$2" = threshold ]; then
    echo "  small: {type: file, inputs: [op.small], path: ./$1.small.jsonl}" >> "$1"
  fi
}

# ---- threshold --------------------------------------------------------------------
job thr.yaml threshold "{threshold: 60}"
"$RUNNEL" run thr.yaml --quiet > thr.log 2>&1
rc=$?
check '[ $rc -eq 0 ]' "a job with a plugin operator runs (rc $rc: $(head -c 300 thr.log))"
big=$(grep -c '"big":true' thr.yaml.out.jsonl 2>/dev/null)
want_big=$(awk -F'"value":' '{ split($2, a, ","); if (a[1] + 0 >= 60) n++ } END { print n }' in.jsonl)
check '[ "$big" = "$want_big" ] && [ "$big" -gt 0 ]' "records >= the threshold reach the main output ($big, want $want_big)"
check '! grep "\"big\":true" thr.yaml.out.jsonl | grep -qv "\"key\":\"k[0-6]\",\"value\":\\(6[0-9]\\|[7-9][0-9]\\),\"big\":true"' \
  "the main output has the declared fields key, value, big, in that order"
small=$(wc -l < thr.yaml.small.jsonl 2>/dev/null || echo 0)
check '[ "$small" -eq $((1000 - want_big)) ] && head -1 thr.yaml.small.jsonl | grep -q "^{\"id\":[0-9]*,\"value\":[0-9]*}$"' \
  "smaller ones reach the side output op.small as {id, value} ($small)"
counts=$(grep '"#count"' thr.yaml.out.jsonl | grep -o '"value":[0-9]*' | cut -d: -f2 | sort -n | tr '\n' ' ')
total=$(echo "$counts" | awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }')
check '[ "$(echo $counts | wc -w)" -eq 2 ] && [ "$total" = 1000 ]' \
  "each of the 2 instances emits its count at the end, together the input ($counts)"

# ---- doubler: the input's schema ---------------------------------------------------
job dbl.yaml doubler "{}"
"$RUNNEL" run dbl.yaml --quiet > dbl.log 2>&1
rc=$?
want=$(awk -F'"value":' '{ split($2, a, ","); sub("\"value\":" a[1] ",", "\"value\":" a[1] * 2 ","); print }' in.jsonl | sort)
check '[ $rc -eq 0 ] && [ "$(sort dbl.yaml.out.jsonl)" = "$want" ]' \
  "without a plan the output is the input's schema: each record copied, value doubled (rc $rc)"

# ---- refusals -----------------------------------------------------------------------
refused() { # NAME PATTERN YAML-ARGS...: the job is refused, the message matches
  local name=$1 pat=$2
  shift 2
  job "$name.yaml" "$@"
  "$RUNNEL" run "$name.yaml" --quiet > "$name.log" 2>&1
  local rc=$?
  check '[ $rc -ne 0 ] && grep -q -- "$pat" "$name.log" && [ ! -s "$name.yaml.out.jsonl" ]' \
    "$name: refused with \"$(head -1 "$name.log" | cut -c1-200)\""
}
refused missing "missing.yaml:[0-9]*:[0-9]*: .*nope.so: No such file" threshold "{threshold: 1}" "$RN_PLUGINS/nope.so"
refused abi "abi.yaml:[0-9]*:[0-9]*: .*built against runnel ABI 999, this runnel has ABI [0-9]*: rebuild" \
  threshold "{threshold: 1}" "$RN_PLUGINS/libtest_ops_abi.so"
refused noinit "noinit.yaml:[0-9]*:[0-9]*: .*has no function runnel_plugin_init" \
  threshold "{threshold: 1}" "$RN_PLUGINS/libtest_ops_noinit.so"
refused symbol "symbol.yaml:[0-9]*:[0-9]*: .*cannot be loaded: .*undefined symbol: rn_pf_not_in_any_runnel" \
  threshold "{threshold: 1}" "$RN_PLUGINS/libtest_ops_missing.so"
refused noop "noop.yaml:[0-9]*:[0-9]*: .*has no operator 'nosuch' (it registers: threshold, doubler, per_second, probe)" nosuch "{}"
refused config "config.yaml:[0-9]*:[0-9]*: .*threshold 'ten' is not an integer" threshold "{threshold: ten}"
mkdir -p shared
cp "$RN_PLUGINS/libtest_ops.so" shared/
chmod 0775 shared/libtest_ops.so
refused writable "writable.yaml:[0-9]*:[0-9]*: .*writable by others than its owner" \
  threshold "{threshold: 1}" "$TMP/shared/libtest_ops.so"
chmod 0755 shared/libtest_ops.so
chmod 0777 shared
refused writable_dir "the directory '.*/shared' on its way can be written by other users (mode 0777, no sticky bit)" threshold "{threshold: 1}" "$TMP/shared/libtest_ops.so"
chmod 0755 shared

# Every directory on the way counts, not only the library's own: a world-
# writable ancestor without the sticky bit is refused; one with it (as
# /tmp) is not.
mkdir -p ww/lib
cp "$RN_PLUGINS/libtest_ops.so" ww/lib/
chmod 0777 ww
refused ancestor "the directory '.*/ww' on its way can be written by other users (mode 0777, no sticky bit)" \
  threshold "{threshold: 1}" "$TMP/ww/lib/libtest_ops.so"
chmod 1777 ww
job sticky.yaml threshold "{threshold: 50}" "$TMP/ww/lib/libtest_ops.so"
"$RUNNEL" run sticky.yaml --quiet > sticky.log 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ -s sticky.yaml.out.jsonl ]' "a library under a sticky world-writable directory (as /tmp) loads (rc $rc: $(head -c 200 sticky.log))"
# A symbolic link on the way that another user owns, in a sticky
# directory, could be pointed elsewhere by that user: refused. Root only
# (chown); said when skipped.
if [ "$(id -u)" -eq 0 ] && id nobody > /dev/null 2>&1; then
  ln -s "$TMP/ww/lib/libtest_ops.so" ww/link.so
  chown -h nobody ww/link.so
  refused foreign_link "the symbolic link '.*/ww/link.so' on its way belongs to another user" \
    threshold "{threshold: 1}" "$TMP/ww/link.so"
  rm ww/link.so
  mkdir -p foreign/lib
  cp "$RN_PLUGINS/libtest_ops.so" foreign/lib/
  chown nobody foreign
  refused foreign_dir "the directory '.*/foreign' on its way belongs to another user" \
    threshold "{threshold: 1}" "$TMP/foreign/lib/libtest_ops.so"
else
  echo "skipped: a link and a directory owned by another user (needs root and the user nobody)"
fi
chmod 0755 ww

# The file checked is the file loaded: while the library's name is swapped
# over and over between the good library and one that others can write
# (another ABI's: loaded, it would say so), each run either loads the good
# one or refuses the writable one; none ever loads the writable one.
mkdir -p swap
cp "$RN_PLUGINS/libtest_ops.so" swap/good.so
cp "$RN_PLUGINS/libtest_ops_abi.so" swap/bad.so
chmod 0666 swap/bad.so
cp swap/good.so swap/lib.so
# Atomic renames as fast as they go (a link, then rename over the name):
# a check by name followed by a load by name loads the writable one in a
# few runs of a hundred.
python3 -c '
import os
while True:
    for s in ("swap/good.so", "swap/bad.so"):
        try:
            os.unlink("swap/.t")
        except OSError:
            pass
        os.link(s, "swap/.t")
        os.rename("swap/.t", "swap/lib.so")
' &
swapper=$!
job swap.yaml threshold "{threshold: 50}" "$TMP/swap/lib.so"
loaded_bad=0 good=0 refused_bad=0
for i in $(seq 60); do
  "$RUNNEL" run swap.yaml --quiet > swap.log 2>&1
  if grep -q "ABI 999" swap.log; then loaded_bad=$((loaded_bad + 1));
  elif grep -q "writable by others" swap.log; then refused_bad=$((refused_bad + 1));
  elif grep -q "" swap.log; then :; else good=$((good + 1)); fi
done
kill "$swapper"; wait "$swapper" 2>/dev/null
check '[ $loaded_bad -eq 0 ] && [ $((good + refused_bad)) -gt 0 ]' \
  "a library swapped while it loads: the writable one is never loaded ($good loaded, $refused_bad refused, $loaded_bad loaded unchecked)"

# ---- the job's plugins: list ------------------------------------------------------
# A library named in the top-level plugins: registers its operators for
# the process: `type: plugin` then names them without library:. Listed
# twice (the same file through another path), it loads once. A missing
# library or a non-path entry is refused at its own line.
ln -sf "$RN_PLUGINS/libtest_ops.so" ops-link.so
plugins_job() { # FILE PLUGINS-YAML
  cat > "$1" <<YAML
name: plugins-list
plugins: $2
sources:
  src: {type: file, path: in.jsonl, schema: {id: int, key: string, value: int, ts: timestamp}, event_time: ts}
operators:
  op: {type: plugin, inputs: [src], operator: doubler}
sinks:
  out: {type: file, inputs: [op], path: ./$1.out.jsonl}
YAML
}
plugins_job list.yaml "[$RN_PLUGINS/libtest_ops.so, ./ops-link.so]"
"$RUNNEL" run list.yaml --quiet > list.log 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ "$(sort list.yaml.out.jsonl)" = "$want" ]' \
  "an operator of a library in plugins: runs without library: (the library listed twice loads once; rc $rc: $(head -c 300 list.log))"
plugins_job nolist.yaml "[]"
"$RUNNEL" run nolist.yaml --quiet > nolist.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "nolist.yaml:[0-9]*:[0-9]*: .*no process function .doubler. is registered .*plugins:" nolist.log' \
  "without the library, the operator is unknown and the message names plugins: ($(head -1 nolist.log | cut -c1-200))"
plugins_job miss.yaml "[./ops-link.so, ./nope.so]"
"$RUNNEL" run miss.yaml --quiet > miss.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "miss.yaml:2:[0-9]*: plugin library ./nope.so: No such file" miss.log' \
  "a missing library in plugins: is refused at its line ($(head -1 miss.log | cut -c1-200))"
plugins_job notpath.yaml "[{a: b}]"
"$RUNNEL" run notpath.yaml --quiet > notpath.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "notpath.yaml:2:[0-9]*: plugins: expected the path of a shared library" notpath.log' \
  "a plugins: entry that is not a path is refused ($(head -1 notpath.log | cut -c1-200))"

# ---- a failure in process() ---------------------------------------------------------
{ head -500 in.jsonl; echo '{"id":5000,"key":"k1","value":-1,"ts":1700000001000}'; } > bad.jsonl
job bad.yaml threshold "{threshold: 60}" "" bad.jsonl
"$RUNNEL" run bad.yaml --quiet > bad.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "operator .op. (instance [01]): record 5000 has value -1" bad.log' \
  "a process() failure stops the job with the operator's message (rc $rc: $(head -1 bad.log | cut -c1-200))"
check '! grep -q "AddressSanitizer\|LeakSanitizer\|runtime error" *.log' "no sanitizer report"

# ---- the rest of the API: getters, instance calls, processing time, clears ----------
cat > probe.yaml <<YAML
name: plugin-probe
parallelism: 2
sources:
  gen: {type: datagen, generator: sequence, events: 4000, rate: 2000, event_time: ts}
operators:
  flagged: {type: map, inputs: [gen], select: {id: id, value: value, flag: "value % 2 == 0", ts: ts}}
  op: {type: plugin, inputs: [flagged], library: $RN_PLUGINS/libtest_ops.so, operator: probe, key: [value]}
sinks:
  out: {type: file, inputs: [op], path: ./probe.jsonl}
  proc: {type: file, inputs: [op.proc], path: ./proc.jsonl}
YAML
"$RUNNEL" run probe.yaml --quiet > probe.log 2>&1
rc=$?
checks=$(grep -c '"checks":true' probe.jsonl 2>/dev/null)
floats=$(grep -c '"v_float":[0-9]*\.0,' probe.jsonl 2>/dev/null)
check '[ $rc -eq 0 ] && [ "$checks" -eq 4000 ] && [ "$floats" -eq 4000 ] && grep -q "\"nothing\":null" probe.jsonl' \
  "getters, is_null, key_int, instance, parallelism, name, port, now, watermark answer as they must ($checks of 4000; rc $rc: $(head -c 200 probe.log))"
procs=$(grep -c '"ok":true' proc.jsonl 2>/dev/null)
keys=$(grep -o '"k":[0-9]*' proc.jsonl 2>/dev/null | sort -u | wc -l)
# A key comes back every 1000 records (0.5 s), long after its timer
# fired and cleared its state: it sets a new one. Timers still pending when
# the input ends do not fire (as in Flink).
check '[ "$procs" -ge 1000 ] && [ "$procs" -le 4000 ] && [ "$keys" -eq 1000 ] && ! grep -q "\"ok\":false" proc.jsonl' \
  "processing-time timers fire with their key; value and map states clear; deleted event-time timers never fire ($procs fired, all ok, $keys keys)"

# ---- keyed state and timers, across stops, a savepoint and a rescale ------------------
# per_second builds 1 s windows from a map, a list, a value and a reducing
# state and event-time timers; the same job's window_aggregate is the
# reference. Then the job stops (SIGTERM: a final checkpoint) and resumes,
# stops with a savepoint and resumes from it with parallelism 3: the
# exactly-once file sink's output equals the clean run's.
port=$((20000 + RANDOM % 20000))
st_job() { # DIR
  mkdir -p "$1"
  port=$((port + 1))
  cat > "$1/job.yaml" <<YAML
name: plugin-state
parallelism: 2
checkpoints: {interval: 200ms, dir: ./ckpt}
rest: {listen: 127.0.0.1:$port}
state: {backend: rocksdb, dir: ./state, memory: 16MB}
sources:
  gen: {type: datagen, generator: sequence, events: 60000, rate: 20000, keys: 50, event_time: ts}
operators:
  ps: {type: plugin, inputs: [gen], library: $RN_PLUGINS/libtest_ops.so, operator: per_second, key: [key]}
  win:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(value), distinct: count_distinct(value)}
sinks:
  out: {type: file, inputs: [ps], path: ./ps.jsonl}
  ref: {type: file, inputs: [win], path: ./win.jsonl}
YAML
}
st_job clean
(cd clean && "$RUNNEL" run job.yaml --quiet > log 2>&1)
rc=$?
ps_fields() { sed -E 's/^\{"key":"([^"]*)","window_end":([0-9]+),"n":([0-9]+),"total":([0-9]+),"distinct":([0-9]+),.*/\1 \2 \3 \4 \5/' "$1" | sort; }
win_fields() { sed -E 's/^\{"key":"([^"]*)","window_start":[0-9]+,"window_end":([0-9]+),"n":([0-9]+),"total":([0-9]+),"distinct":([0-9]+)\}$/\1 \2 \3 \4 \5/' "$1" | sort; }
n=$(wc -l < clean/ps.jsonl 2>/dev/null || echo 0)
check '[ $rc -eq 0 ] && [ "$n" -eq 3000 ] && [ "$(ps_fields clean/ps.jsonl)" = "$(win_fields clean/win.jsonl)" ]' \
  "map state and event-time timers give window_aggregate's windows: count, sum, count_distinct ($n windows, rc $rc)"
bad=$(sed -E 's/^\{"key":"([^"]*)","window_end":([0-9]+),.*"windows":([0-9]+),"listed":(true|false),"fired_sum":([0-9]+)\}$/\1 \2 \3 \4 \5/' clean/ps.jsonl |
  sort -k1,1 -k2,2n | awk '$1 != k { k = $1; i = 0; sum = 0 } { i++; sum += $2; if ($3 != i || $4 != "true" || $5 != sum) bad++ } END { print bad + 0 }')
check '[ "$n" -eq 3000 ] && [ "$bad" -eq 0 ]' "value state (windows fired), list state (pending ends) and reducing state (sum of ends) hold per key ($bad wrong)"

st_job resume
(cd resume && exec "$RUNNEL" run job.yaml > log 2>&1) &
pid=$!
# Stopped once it has taken a checkpoint (the deadline only catches a hang).
for _ in $(seq 3000); do
  ls resume/ckpt 2>/dev/null | grep -qE '^chk-[0-9]+$' && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -TERM $pid
wait $pid
rc1=$?
(cd resume && exec "$RUNNEL" run job.yaml >> log 2>&1) &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/status" > /dev/null 2>&1 && break; sleep 0.05; done
sleep 0.5
sp=$("$RUNNEL" stop "127.0.0.1:$port" --savepoint "$TMP/resume/ckpt/savepoints/sp" 2> resume/stop.err | tail -1)
wait $pid
rc2=$?
(cd resume && "$RUNNEL" run job.yaml --from-savepoint "$TMP/resume/ckpt/savepoints/sp" --set parallelism=3 >> log 2>&1)
rc3=$?
check '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ] && grep -q "stopped at checkpoint" resume/log && grep -q "resuming from savepoint" resume/log' \
  "stopped, resumed, stopped with a savepoint, resumed with parallelism 3 (rc $rc1 $rc2 $rc3)"
check '[ -s resume/ps.jsonl ] && [ "$(sort resume/ps.jsonl)" = "$(sort clean/ps.jsonl)" ]' \
  "plugin state and timers come back from checkpoints and a savepoint: output equals the clean run's ($(wc -l < resume/ps.jsonl) lines)"
check '! grep -q "AddressSanitizer\|LeakSanitizer\|runtime error" */log' "no sanitizer report in the state runs"

if [ $fail -eq 0 ] && [ -z "${RN_KEEP:-}" ]; then rm -rf "$TMP"; else echo "kept: $TMP"; fi
exit $fail
