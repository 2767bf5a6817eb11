#!/usr/bin/env bash
# Savepoints: taken through the job's REST endpoint by `runnel
# savepoint` and `runnel stop --savepoint`, resumed with `runnel run
# --from-savepoint` at the same or another parallelism (1->4, 4->1, 2->3)
# with the output of a clean run (each line once: the order of lines from
# several window instances is not fixed); a savepoint copied elsewhere
# resumes; state of a component the job no longer has is refused unless
# --allow-non-restored-state; the endpoint takes only new directories
# directly in the savepoints root (never the checkpoint store's chk-N or
# shared/, nor inside another savepoint), checks each field's type and
# refuses oversized paths and requests and unknown paths; a crash in the
# middle of a savepoint leaves no savepoint, its .inprogress directory is
# removed at the next start, and nothing is lost.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/savepoint.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
port=$((20000 + ($$ * 7) % 30000))

write_job() { # DIR PARALLELISM [WINDOW-NAME]
  mkdir -p "$1"
  port=$((port + 1))
  cat > "$1/job.yaml" <<YAML
name: savepoint
parallelism: $2
checkpoints: {interval: 300ms, dir: ./ckpt}
state: {backend: rocksdb, dir: ./state, memory: 16MB}
rest: {listen: 127.0.0.1:$port}
sources:
  gen: {type: datagen, generator: sequence, events: 400000, rate: 100000, keys: 100, event_time: ts}
operators:
  ${3:-per_key}:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: file, inputs: [${3:-per_key}], path: ./out.jsonl}
YAML
}
addr() { grep -o '127.0.0.1:[0-9]*' "$1/job.yaml"; }
# Starts the job in DIR and waits for its endpoint (the deadline only
# catches a hang: a loaded machine may take seconds to start a job).
start() {
  (cd "$1" && exec "$RUNNEL" run job.yaml --quiet "${@:2}" >> log 2>&1) &
  pid=$!
  local t0=$SECONDS
  while [ $((SECONDS - t0)) -lt 300 ] && kill -0 $pid 2> /dev/null; do
    curl -sf "http://$(addr "$1")/status" > /dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 0
}
# Waits until the job in DIR (process pid) completed a checkpoint: records
# flow. The deadline only catches a hang.
wait_first_ckpt() {
  local t0=$SECONDS
  while [ $((SECONDS - t0)) -lt 300 ] && kill -0 $pid 2> /dev/null; do
    ls "$1"/ckpt/chk-*/_metadata > /dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 0
}

write_job "$work/clean" 1
(cd "$work/clean" && "$RUNNEL" run job.yaml --quiet)
sort "$work/clean/out.jsonl" > "$work/clean.sorted"
check '[ "$(wc -l < "$work/clean.sorted")" -eq 40000 ]' "clean run: 400 windows of 100 keys"

# FROM -> TO: stop with a savepoint once a checkpoint completed, resume at TO.
rescale() {
  local from=$1 to=$2 d=$work/p$1-$2
  write_job "$d" "$from"
  start "$d"
  wait_first_ckpt "$d"
  sp=$("$RUNNEL" stop "$(addr "$d")" --savepoint "$d/ckpt/savepoints/sp" 2> "$d/stop.err" | tail -1)
  wait $pid
  check '[ "$sp" = "$(cd "$d" && pwd -P)/ckpt/savepoints/sp" ]' "p$from: runnel stop --savepoint prints the savepoint's path ($sp)"
  check 'grep -q "job stopped at checkpoint" "$d/log"' "p$from: the job stopped after the savepoint"
  write_job "$d" "$to"
  (cd "$d" && "$RUNNEL" run job.yaml --from-savepoint "$sp" >> log 2>&1)
  check '[ $? -eq 0 ]' "p$from -> p$to: the job resumes and finishes"
  check 'grep -q "resuming from savepoint" "$d/log"' "p$from -> p$to: it says it resumes from the savepoint"
  check 'cmp -s <(sort "$d/out.jsonl") "$work/clean.sorted"' "p$from -> p$to: the output has a clean run's lines, each once"
}
rescale 1 4
rescale 4 1
rescale 2 3

# runnel savepoint while the job runs; the job goes on; the savepoint,
# copied elsewhere and the original removed, resumes.
d=$work/copy
write_job "$d" 2
start "$d"
sleep 0.8
sp=$("$RUNNEL" savepoint "$(addr "$d")" 2> "$d/sp.err" | tail -1)
check '[ -d "$sp" ] && [[ "$sp" == */ckpt/savepoints/* ]]' "runnel savepoint: taken under the savepoints root ($sp)"
curl -s "http://$(addr "$d")/status" > "$d/status.json"
check 'grep -q "\"state\":\"running\"" "$d/status.json"' "the job runs on after a savepoint"
check '"$RUNNEL" checkpoints "$d/ckpt" | grep -q "savepoints/.*savepoint.*ok"' "runnel checkpoints lists the savepoint"
# The endpoint's refusals.
code() { curl -s -o "$d/body" -w '%{http_code}' "$@"; }
check '[ "$(code -X POST -d "{\"dir\":\"/tmp/elsewhere-$$\"}" "http://$(addr "$d")/savepoint")" = 400 ] && grep -q "not under" "$d/body"' "a directory outside the roots is refused"
check '[ "$(code -X POST -d "{\"dir\":\"$d/ckpt/../../escape\"}" "http://$(addr "$d")/savepoint")" = 400 ]' "a '..' escape is refused"
ln -s /tmp "$d/ckpt/link"
check '[ "$(code -X POST -d "{\"dir\":\"$d/ckpt/link/x\"}" "http://$(addr "$d")/savepoint")" = 400 ]' "a symlink escape is refused"
check '[ "$(code -X POST -d "{\"dir\":\"$sp\"}" "http://$(addr "$d")/savepoint")" = 400 ] && grep -q "exists" "$d/body"' "an existing directory is refused"
# The checkpoint store's own names, inside it: they would be taken for a
# checkpoint (numbering) or for shared files (retention).
check '[ "$(code -X POST -d "{\"dir\":\"$d/ckpt/chk-99999999\"}" "http://$(addr "$d")/savepoint")" = 400 ] && grep -q "not under the savepoints directory" "$d/body"' "a chk-N in the checkpoint directory is refused"
check '[ "$(code -X POST -d "{\"dir\":\"$d/ckpt/shared/x\"}" "http://$(addr "$d")/savepoint")" = 400 ]' "a directory in the store's shared/ is refused"
check '[ "$(code -X POST -d "{\"dir\":\"$sp/x\"}" "http://$(addr "$d")/savepoint")" = 400 ]' "a directory inside another savepoint is refused"
check '[ "$(code -X POST -d "{\"dir\":\"$d/ckpt/savepoints/a.inprogress\"}" "http://$(addr "$d")/savepoint")" = 400 ]' "a name ending in .inprogress is refused"
# Every field's type.
check '[ "$(code -X POST -d "{\"dir\":5}" "http://$(addr "$d")/savepoint")" = 400 ] && grep -q "must be a string" "$d/body"' "a number as the directory is refused, not taken as a default savepoint"
check '[ "$(code -X POST -d "{\"dir\":null}" "http://$(addr "$d")/savepoint")" = 400 ]' "null as the directory is refused"
check '[ "$(code -X POST -d "{\"savepoint\":\"$d/ckpt/savepoints/y\"}" "http://$(addr "$d")/savepoint")" = 400 ] && grep -q "unknown field" "$d/body"' "an unknown field is refused"
check '[ "$(code -X POST -d "[\"$d/ckpt/savepoints/y\"]" "http://$(addr "$d")/savepoint")" = 400 ] && grep -q "JSON object" "$d/body"' "a body that is not an object is refused"
check '[ "$(code -X POST -d "{\"savepoint\":7}" "http://$(addr "$d")/stop")" = 400 ] && grep -q "must be a string" "$d/body"' "stop: a number as the savepoint is refused (the job goes on)"
long=$(head -c 5000 /dev/zero | tr '\0' 'a')
check '[ "$(code -X POST -d "{\"dir\":\"$d/ckpt/savepoints/$long\"}" "http://$(addr "$d")/savepoint")" = 400 ] && grep -q "bytes long" "$d/body"' "a 5,000-character path is refused as too long"
check '[ ! -e "$d/ckpt/chk-99999999" ] && [ ! -e "$d/ckpt/shared/x" ] && [ -z "$(ls "$d/ckpt/savepoints" | grep -v "^$(basename "$sp")$")" ]' "the refused requests made nothing"
head -c 70000 /dev/zero | tr '\0' 'x' > "$d/big"
check '[ "$(code -X POST --data-binary @"$d/big" "http://$(addr "$d")/savepoint")" = 413 ]' "a request over 64 KB is refused"
check '[ "$(code "http://$(addr "$d")/nothing")" = 404 ]' "an unknown path gets 404"
kill -9 $pid; wait $pid 2>/dev/null
cp -r "$sp" "$work/moved-sp"
rm -rf "$sp"
write_job "$work/moved" 3
# The job moves with its output file: the savepoint records how much of it
# was committed, and what came after is taken back.
cp "$d/out.jsonl" "$work/moved/"
(cd "$work/moved" && "$RUNNEL" run job.yaml --from-savepoint "$work/moved-sp" >> log 2>&1)
check '[ $? -eq 0 ] && cmp -s <(sort "$work/moved/out.jsonl") "$work/clean.sorted"' \
  "a savepoint copied elsewhere resumes with a clean run's output"

# State of a component the job no longer has: refused, then allowed.
write_job "$work/renamed" 2 windows
cp "$d/out.jsonl" "$work/renamed/"
(cd "$work/renamed" && "$RUNNEL" run job.yaml --from-savepoint "$work/moved-sp" --quiet > /dev/null 2> err)
check '[ $? -ne 0 ] && grep -q "per_key.*no longer has.*--allow-non-restored-state" "$work/renamed/err"' \
  "state of a removed component is refused with what to do"
(cd "$work/renamed" && "$RUNNEL" run job.yaml --from-savepoint "$work/moved-sp" --allow-non-restored-state --quiet > /dev/null 2> err)
check '[ $? -eq 0 ]' "--allow-non-restored-state drops it and runs"

# A crash in the middle of a savepoint: no savepoint, nothing lost.
d=$work/crash
write_job "$d" 1
(cd "$d" && RN_CRASH_AT=ckpt.savepoint_mid exec "$RUNNEL" run job.yaml --quiet >> log 2>&1) &
pid=$!
for _ in $(seq 100); do curl -sf "http://$(addr "$d")/status" > /dev/null 2>&1 && break; sleep 0.05; done
sleep 0.5
"$RUNNEL" savepoint "$(addr "$d")" "$d/ckpt/savepoints/sp" > /dev/null 2>&1
wait $pid
rc=$?
check '[ $rc -eq 77 ]' "ckpt.savepoint_mid: the process exits there (rc $rc)"
check '[ ! -e "$d/ckpt/savepoints/sp" ] && [ -d "$d/ckpt/savepoints/sp.inprogress" ]' "ckpt.savepoint_mid: no savepoint is left, only its .inprogress directory"
(cd "$d" && "$RUNNEL" run job.yaml --quiet >> log 2>&1)
check '[ ! -e "$d/ckpt/savepoints/sp.inprogress" ]' "the next start removes the savepoint's .inprogress directory"
check 'cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"' "ckpt.savepoint_mid: the next run's output is exact"
exit $fail
