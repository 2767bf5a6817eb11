#!/usr/bin/env bash
# tests/integration/test_plugin_connector.sh: sources and sinks from a
# plugin (runnel/connector.h, docs/plugins.md "Sources and sinks"), with
# tests/plugins/ext_connector.c: the bounded source `counter` (ids 0 ..
# count-1 split between its instances, position = the next id) and the
# sink `append` (a line per record, fsync on flush).
#
# - counter (parallelism 2) -> filter -> append: the file holds exactly
#   the expected ids, each once; rows carry the declared fields in order.
# - counter -> window_aggregate -> file sink: the windows' counts are
#   those computed with awk from the ids (event time from `ts`).
# - checkpoints every 200 ms, SIGKILL mid-run, run again: the source
#   resumes at the position of the checkpoint the job restores (its open
#   prints it); the exactly-once file sink's output equals a clean run's;
#   the append sink holds every id, the ids below the restored positions
#   exactly once, duplicates only at or after them.
# - runnel stop --savepoint, then --from-savepoint: output equals a clean
#   run's; resuming that savepoint with another parallelism of the source
#   is refused, saying which parallelism to give it.
# - refusals with FILE:LINE:COL: an unknown source type (the message lists
#   the registered `counter`) and an unknown sink type (lists `append`);
#   a source whose plan declares no field; a config the plan refuses
#   (count -1, at `config`); a sink field the plan refuses.
# - a row without its event time fails the job, naming the source; a
#   failing flush declines the checkpoint with the sink's message.
#
# Env: RUNNEL, RN_PLUGINS (the built test plugins), RN_TEST_TMP.
set -u
: "${RUNNEL:?}" "${RN_PLUGINS:?}"
mkdir -p "${RN_TEST_TMP:-/tmp}"
work=$(mktemp -d "${RN_TEST_TMP:-/tmp}/plugin_connector.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null' EXIT
cd "$work" || exit 1
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
LIB=$RN_PLUGINS/libext_connector.so
port=$((20000 + ($$ * 11) % 30000))

# ---- counter -> filter -> append ----------------------------------------------------
cat > filter.yaml <<YAML
name: conn-filter
parallelism: 2
plugins: [$LIB]
sources:
  cnt: {type: counter, event_time: ts, config: {count: 5000, per_poll: 300}}
operators:
  f: {type: filter, inputs: [cnt], where: "id % 3 == 0"}
sinks:
  out: {type: append, inputs: [f], config: {path: ./filter.txt, fields: [id, key, ts]}}
YAML
"$RUNNEL" run filter.yaml --quiet > filter.log 2>&1
rc=$?
check '[ $rc -eq 0 ]' "counter -> filter -> append runs (rc $rc: $(head -c 300 filter.log))"
want=$(awk 'BEGIN { for (i = 0; i < 5000; i += 3) printf "%d,k%d,%.0f\n", i, i % 4, 1700000000000 + i }' | sort)
check '[ "$(sort filter.txt)" = "$want" ]' \
  "the append file holds exactly the ids divisible by 3 below 5000, as id,key,ts ($(wc -l < filter.txt) lines)"

# ---- counter -> window -> file sink ----------------------------------------------------
cat > window.yaml <<YAML
name: conn-window
parallelism: 2
plugins: [$LIB]
sources:
  cnt: {type: counter, event_time: ts, config: {count: 4500}}
operators:
  w:
    type: window_aggregate
    inputs: [cnt]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), top: max(id)}
sinks:
  out: {type: file, inputs: [w], path: ./window.jsonl}
YAML
"$RUNNEL" run window.yaml --quiet > window.log 2>&1
rc=$?
got=$(grep -o '"key":"k[0-9]","window_start":[0-9]*,"window_end":[0-9]*,"n":[0-9]*,"top":[0-9]*' window.jsonl 2>/dev/null | sort)
want=$(awk 'BEGIN { for (i = 0; i < 4500; i++) { k = "k" i % 4; w = int(i / 1000); n[k "," w]++; t[k "," w] = i }
  for (x in n) { split(x, a, ","); s = 1700000000000 + a[2] * 1000
    printf "\"key\":\"%s\",\"window_start\":%.0f,\"window_end\":%.0f,\"n\":%d,\"top\":%d\n", a[1], s, s + 1000, n[x], t[x] } }' | sort)
check '[ $rc -eq 0 ] && [ -n "$got" ] && [ "$got" = "$want" ]' \
  "counter -> window_aggregate -> file: 20 windows with awk's counts (rc $rc, $(echo "$got" | grep -c .) windows)"

# ---- checkpoints, SIGKILL, recovery -------------------------------------------------
write_job() { # DIR SOURCE-PARALLELISM [REST]
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: conn-ckpt
plugins: [$LIB]
checkpoints: {interval: 200ms, dir: ./ckpt}
state: {backend: rocksdb, dir: ./state, memory: 16MB}
$([ -n "${3:-}" ] && echo "rest: {listen: 127.0.0.1:$3}")
sources:
  cnt: {type: counter, parallelism: $2, event_time: ts, config: {count: 60000, rate: 15000, per_poll: 200}}
operators:
  w:
    type: window_aggregate
    inputs: [cnt]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(id)}
sinks:
  out: {type: file, inputs: [w], path: ./out.jsonl}
  ids: {type: append, inputs: [cnt], parallelism: 1, config: {path: ./ids.txt}}
YAML
}
write_job clean 2
(cd clean && "$RUNNEL" run job.yaml --quiet > log 2>&1)
sort clean/out.jsonl > clean.sorted
check '[ "$(wc -l < clean.sorted)" -eq 240 ] && [ "$(sort -n clean/ids.txt | uniq | wc -l)" -eq 60000 ]' \
  "clean run: 60 windows of 4 keys; the append sink has the 60000 ids ($(wc -l < clean.sorted) windows)"

write_job crash 2
(cd crash && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
# Up to a minute: a sanitizer build on a loaded machine starts slowly.
for _ in $(seq 1200); do
  [ "$(ls crash/ckpt 2>/dev/null | grep -cE '^chk-[0-9]+$')" -ge 3 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -9 $pid; wait $pid 2>/dev/null
before=$(wc -l < crash/ids.txt)
# The positions in the newest checkpoint (8 bytes little-endian, in hex),
# which the next run resumes from.
newest=$(ls crash/ckpt | grep -E '^chk-[0-9]+$' | sort | tail -1)
le64() { local h=$1 v=0 i; for i in 7 6 5 4 3 2 1 0; do v=$((v * 256 + 16#${h:$((2 * i)):2})); done; echo $v; }
ckpos=$(for h in $(grep -o '"pos": *"[0-9a-f]*"' "crash/ckpt/$newest/_metadata" | grep -o '[0-9a-f]\{16\}'); do le64 "$h"; done | sort -n | tr '\n' ' ')
check '[ "$(echo $ckpos | wc -w)" -eq 2 ]' "the newest checkpoint ($newest) holds both source instances' positions as 8 hex bytes ($ckpos)"
check '[ "$before" -gt 0 ] && [ "$before" -lt 60000 ]' "the job was killed mid-run ($before ids written)"
(cd crash && "$RUNNEL" run job.yaml --quiet > log2 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "the killed job runs again to its end (rc $rc: $(grep -v resumes crash/log2 | head -c 300))"
pos=$(grep -o 'counter [0-9]*/2 resumes at [0-9]*' crash/log2 | awk '{ print $NF }' | sort -n | tr '\n' ' ')
check '[ "$(echo $pos | wc -w)" -eq 2 ] && [ "$pos" = "$ckpos" ] && grep -q "resuming from checkpoint $((10#${newest#chk-}))$" crash/log2' \
  "both source instances' open got the position of the checkpoint resumed from ($pos)"
p0=$(grep -o 'counter 0/2 resumes at [0-9]*' crash/log2 | awk '{ print $NF }')
p1=$(grep -o 'counter 1/2 resumes at [0-9]*' crash/log2 | awk '{ print $NF }')
check 'cmp -s <(sort crash/out.jsonl) clean.sorted' "the exactly-once file sink's output equals a clean run's"
check '[ "$(sort -n crash/ids.txt | uniq | wc -l)" -eq 60000 ] && [ "$(sort -n crash/ids.txt | uniq | head -1)" = 0 ] && [ "$(sort -n crash/ids.txt | uniq | tail -1)" = 59999 ]' \
  "the append sink holds every id 0..59999 at least once"
dups=$(sort -n crash/ids.txt | uniq -d)
bad=$(echo "$dups" | awk -v p0="${p0:-0}" -v p1="${p1:-0}" 'NF { if (($1 % 2 == 0 && $1 < p0) || ($1 % 2 == 1 && $1 < p1)) n++ } END { print n + 0 }')
check '[ -n "$p0" ] && [ -n "$p1" ] && [ "$bad" -eq 0 ] && [ "$(echo "$dups" | grep -c .)" -gt 0 ]' \
  "duplicates only at or after the restored positions ($(echo "$dups" | grep -c .) duplicates, $bad before them)"

# ---- savepoint: stop and resume ---------------------------------------------------------
addr() { grep -o '127.0.0.1:[0-9]*' "$1/job.yaml"; }
write_job sp 2 $((port + 1))
(cd sp && exec "$RUNNEL" run job.yaml --quiet >> log 2>&1) &
pid=$!
# The endpoint answers and a first checkpoint completed (records flow);
# the deadline only catches a hang (a loaded machine took over 5 s to
# start the job, which a 5 s wait here once mistook for its end).
t0=$SECONDS
until curl -sf "http://$(addr sp)/status" > /dev/null 2>&1 && ls sp/ckpt/chk-*/_metadata > /dev/null 2>&1; do
  kill -0 $pid 2>/dev/null || break
  [ $((SECONDS - t0)) -lt 300 ] || break
  sleep 0.05
done
svp=$(timeout 60 "$RUNNEL" stop "$(addr sp)" --savepoint "$work/sp/ckpt/savepoints/svp" 2> sp/stop.err | tail -1)
# Bounded: a job whose savepoint failed must not hang the test.
for _ in $(seq 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -9 $pid 2>/dev/null && echo "FAIL: the job did not stop after runnel stop --savepoint" && fail=1
wait $pid 2>/dev/null
check '[ -n "$svp" ] && [ -d "$svp" ] && grep -q "job stopped at checkpoint" sp/log' \
  "runnel stop --savepoint stops the job ($svp: $(head -c 200 sp/stop.err))"
check '[ "$(wc -l < sp/ids.txt)" -lt 60000 ]' "it stopped before the end ($(wc -l < sp/ids.txt) ids)"
write_job sp 3
(cd sp && "$RUNNEL" run job.yaml --from-savepoint "$svp" --quiet > rescale.log 2>&1)
rc=$?
check '[ $rc -ne 0 ] && grep -q "positions of 2 instances of source .cnt.*parallelism: 2" sp/rescale.log' \
  "resuming with another parallelism of the source is refused: $(grep -o 'the savepoint has.*' sp/rescale.log | head -c 200)"
write_job sp 2
(cd sp && "$RUNNEL" run job.yaml --from-savepoint "$svp" --quiet > resume.log 2>&1)
rc=$?
check '[ $rc -eq 0 ] && grep -q "resumes at" sp/resume.log && cmp -s <(sort sp/out.jsonl) clean.sorted' \
  "resumed from the savepoint, the output equals a clean run's (rc $rc)"
check '[ "$(sort -n sp/ids.txt | uniq | wc -l)" -eq 60000 ] && [ -z "$(sort -n sp/ids.txt | uniq -d)" ]' \
  "after stop-with-savepoint and resume the append sink has every id exactly once"

# ---- refusals -------------------------------------------------------------------------
refused() { # NAME PATTERN: NAME.yaml is refused; the message matches
  local name=$1 pat=$2
  "$RUNNEL" run "$name.yaml" --quiet > "$name.log" 2>&1
  local rc=$?
  check '[ $rc -ne 0 ] && grep -q -- "$pat" "$name.log"' "$name: refused with \"$(head -1 "$name.log" | cut -c1-220)\""
}
small() { # NAME SOURCE-YAML SINK-YAML
  cat > "$1.yaml" <<YAML
name: conn-refused
plugins: [$LIB]
sources:
  cnt: $2
sinks:
  out: $3
YAML
}
small unknown_src "{type: countr, event_time: ts}" "{type: discard, inputs: [cnt]}"
refused unknown_src "unknown_src.yaml:4:[0-9]*: source 'cnt': unknown source type 'countr'.*known: .*datagen.*counter"
small unknown_src2 "{type: nosuch, event_time: ts}" "{type: discard, inputs: [cnt]}"
refused unknown_src2 "unknown_src2.yaml:4:[0-9]*: .*unknown source type 'nosuch' (known: .*file.*counter)"
small unknown_sink "{type: counter, event_time: ts}" "{type: nosuch, inputs: [cnt]}"
refused unknown_sink "unknown_sink.yaml:6:[0-9]*: .*unknown sink type 'nosuch' (known: .*stdout.*append)"
small nofield "{type: counter, config: {no_fields: true}}" "{type: discard, inputs: [cnt]}"
refused nofield "nofield.yaml:4:[0-9]*: source 'cnt' (type counter): its plan declared no field"
small badconf "{type: counter, event_time: ts, config: {count: -1}}" "{type: discard, inputs: [cnt]}"
refused badconf "badconf.yaml:4:[0-9]*: source 'cnt' (type counter): config count must not be negative"
small badfield "{type: counter, event_time: ts}" "{type: append, inputs: [cnt], config: {path: x.txt, fields: [nope]}}"
refused badfield "badfield.yaml:6:[0-9]*: sink 'out' (type append): the input has no field 'nope'"
small badkey "{type: counter, event_time: ts, confg: {}}" "{type: discard, inputs: [cnt]}"
refused badkey "badkey.yaml:4:[0-9]*: .*confg.*did you mean 'config'"

# ---- failures at run time ---------------------------------------------------------------
small nullts "{type: counter, event_time: ts, config: {count: 1000, null_ts: 700}}" \
  "{type: append, inputs: [cnt], config: {path: nullts.txt}}"
refused nullts "job failed: source 'cnt' (instance 0): .*a record has no event time (field 'ts' is null)"
cat > flushfail.yaml <<YAML
name: conn-flush
plugins: [$LIB]
checkpoints: {interval: 100ms, dir: ./flushfail-ckpt}
sources:
  cnt: {type: counter, event_time: ts, config: {count: 6000, rate: 6000}}
sinks:
  out: {type: append, inputs: [cnt], config: {path: ./flushfail.txt, fail_flush: true}}
YAML
"$RUNNEL" run flushfail.yaml > flushfail.log 2>&1
check 'grep -q "checkpoint [0-9]* declined: .out. (instance 0): snapshot: flush failed: .*the disk said no" flushfail.log && [ -z "$(ls flushfail-ckpt 2>/dev/null | grep -E "^chk-")" ]' \
  "a failing flush declines the checkpoints with the sink's message: $(grep -o 'declined.*' flushfail.log | head -1 | cut -c1-200)"

exit $fail
