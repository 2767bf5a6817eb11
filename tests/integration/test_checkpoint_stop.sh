#!/usr/bin/env bash
# Checkpoints beyond crashes: a clean stop with SIGTERM takes a
# final checkpoint and the next run continues exactly; checkpoints that
# time out are aborted and counted while the job goes on; at-least-once
# mode loses nothing; retention keeps `retain` checkpoints and exactly the
# shared files they name, and checkpoints reuse what earlier ones stored
# (incremental), and `incremental: false` copies every file; directories
# are 0700, files 0600, and a state directory others can write is refused.
# RN_TEST_BACKENDS (default "memory rocksdb") limits the backends: the
# ThreadSanitizer run uses "memory" only, since RocksDB's library is not
# instrumented (every RocksDB mutex reads as misused there); the Release and
# AddressSanitizer runs cover both.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/ckstop.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
fail=0
backends=${RN_TEST_BACKENDS:-memory rocksdb}
last=${backends##* }
has_rocksdb() { [[ " $backends " == *" rocksdb "* ]]; }
has_rocksdb || echo "note: RN_TEST_BACKENDS=$backends: the RocksDB-only checks (retention, incremental, state directory) are not run here"
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

write_job() { # DIR BACKEND PARALLELISM EXTRA-CHECKPOINT-KEYS [EVENTS]
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: stop
parallelism: $3
checkpoints: {interval: 100ms, dir: ./ckpt$4}
state: {backend: $2, dir: ./state, memory: 16MB}
sources:
  gen: {type: datagen, generator: sequence, events: ${5:-300000}, rate: 100000, keys: 100, event_time: ts}
operators:
  per_key:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: file, inputs: [per_key], path: ./out.jsonl}
YAML
}
run() { (cd "$1" && "$RUNNEL" run job.yaml >> log 2>&1); }
# The newest checkpoint's number in DIR/ckpt (0: none).
newest_id() { ls "$1/ckpt" 2>/dev/null | grep -E '^chk-[0-9]+$' | sed 's/^chk-0*//' | sort -n | tail -1 | grep . || echo 0; }
# Waits until the job (pid $pid) in DIR has completed a checkpoint newer
# than AFTER, or has ended. The deadline (150 s) only catches a hang: a
# sanitizer build on a loaded machine is slow.
wait_checkpoint() { # DIR AFTER
  for _ in $(seq 3000); do
    [ "$(newest_id "$1")" -gt "$2" ] && return 0
    kill -0 $pid 2>/dev/null || return 0
    sleep 0.05
  done
}

write_job "$work/clean" memory 1 ""
run "$work/clean"
sort "$work/clean/out.jsonl" > "$work/clean.sorted"
check '[ "$(wc -l < "$work/clean.sorted")" -eq 30000 ]' "clean run: 300 windows of 100 keys"

# SIGTERM: a final checkpoint, exit 0, and the next run continues exactly.
for backend in $backends; do
  for par in 1 2; do
    d=$work/stop-$backend-$par
    write_job "$d" $backend $par ""
    (cd "$d" && exec "$RUNNEL" run job.yaml >> log 2>&1) &
    pid=$!
    # Stopped once some output is committed (a checkpoint with windows
    # completed); the source's rate keeps the job running for 3 s at least.
    for _ in $(seq 3000); do
      [ -s "$d/out.jsonl" ] && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.05
    done
    kill -TERM $pid
    wait $pid
    rc=$?
    check '[ $rc -eq 0 ]' "$backend p$par: SIGTERM stops the job cleanly (rc $rc)"
    at=$(grep -o "stopped at checkpoint [0-9]*" "$d/log" | grep -o "[0-9]*$")
    check '[ -n "$at" ]' "$backend p$par: it says at which checkpoint (${at:-none})"
    part=$(wc -l < "$d/out.jsonl")
    check '[ "$part" -gt 0 ] && [ "$part" -lt 30000 ]' "$backend p$par: part of the output is committed ($part lines)"
    run "$d"
    check 'grep -q "resuming from checkpoint $at\$" "$d/log"' "$backend p$par: the next run resumes from checkpoint $at"
    if [ $par = 1 ]; then
      check 'cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"' "$backend p$par: the output equals a clean run's"
    else
      check 'cmp -s <(sort "$d/out.jsonl") "$work/clean.sorted"' "$backend p$par: the output has a clean run's lines, each once"
    fi
  done
done

# A timeout no checkpoint can meet: every one aborted and counted, the job
# finishes with exact output.
d=$work/timeout
write_job "$d" "$last" 1 ", timeout: 1ms"
run "$d"
check '[ $? -eq 0 ]' "timeout: the job finishes"
check 'grep -q "checkpoints: 0 completed, [1-9][0-9]* failed" "$d/log"' "timeout: checkpoints aborted and counted"
check 'grep -q "aborted: not complete within the timeout" "$d/log"' "timeout: the reason is logged"
check 'cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"' "timeout: the output is exact"

# At-least-once: killed twice, nothing lost (a window may count a record twice).
d=$work/alo
write_job "$d" "$last" 2 ", mode: at-least-once"
for k in 1 2; do
  before=$(newest_id "$d")
  (cd "$d" && exec "$RUNNEL" run job.yaml --quiet >> log 2>&1) &
  pid=$!; wait_checkpoint "$d" "$before"; kill -9 $pid; wait $pid 2>/dev/null
done
run "$d"
missing=$(join -v1 <(sed 's/,"n".*//' "$work/clean.sorted" | sort -u) <(sed 's/,"n".*//' "$d/out.jsonl" | sort -u) | wc -l)
check '[ "$missing" -eq 0 ]' "at-least-once: every window of the clean run is there ($missing missing)"
check 'grep -q "resuming from checkpoint" "$d/log"' "at-least-once: runs resumed"

has_rocksdb || exit $fail

# Retention and sharing: at most `retain` checkpoints; shared files are
# exactly those they name; checkpoints reuse the files earlier ones stored
# (incremental). Stopped with SIGTERM: a SIGKILL can land while the next
# checkpoint's files are being stored in shared/, before its metadata
# names them (the next commit's retention removes such files).
d=$work/retain
write_job "$d" rocksdb 2 ", retain: 2" 600000
(cd "$d" && RUNNEL_LOG=info exec "$RUNNEL" run job.yaml --quiet >> log 2>&1) &
pid=$!
# Stopped after a few checkpoints (the deadline only catches a hang).
for _ in $(seq 3000); do
  [ "$(grep -c 'checkpoint [0-9]* complete' "$d/log")" -ge 4 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -TERM $pid; wait $pid
check '[ $? -eq 0 ]' "retain 2: the job stops cleanly"
n=$(ls "$d/ckpt" | grep -cE '^chk-[0-9]+$')
check '[ "$n" -eq 2 ]' "retain 2: two checkpoints kept ($n)"
cat "$d"/ckpt/chk-*/_metadata | grep -o 'shared/[0-9a-f]*\.sst' | sort -u > "$work/named"
(cd "$d/ckpt" && ls shared | sed 's|^|shared/|' | sort) > "$work/stored"
check 'cmp -s "$work/named" "$work/stored"' "shared/ holds exactly the files the kept checkpoints name ($(wc -l < "$work/stored"))"
# Two given checkpoints need not share a file: a compaction between them
# can rewrite every SST (it merges all of L0 with what it overlaps, here
# everything). What incremental promises is that a checkpoint stores only
# the SST files no earlier one stored: some of the run's checkpoints added
# less than their size.
reused=$(grep -o 'checkpoint [0-9]* complete: [0-9]* bytes ([0-9]* new)' "$d/log" |
  awk '{ n = substr($6, 2) + 0; if (n < $4 + 0) r++ } END { print r + 0 }')
taken=$(grep -c 'checkpoint [0-9]* complete' "$d/log")
check '[ "$reused" -ge 1 ]' "incremental: $reused of $taken checkpoints reused files earlier ones stored"
check '[ "$(stat -c %a "$d/ckpt")" = 700 ] && [ "$(stat -c %a "$d/ckpt/shared")" = 700 ]' "checkpoint directories are 0700"
bad=$(find "$d/ckpt" -type f ! -perm 600 | wc -l)
check '[ "$bad" -eq 0 ]' "checkpoint files are 0600 ($bad are not)"

# Not incremental: every file in the checkpoint itself.
d=$work/full
write_job "$d" rocksdb 1 ", incremental: false"
run "$d"
check '[ -z "$(ls "$d/ckpt/shared")" ]' "incremental: false: nothing in shared/"
check 'ls "$d"/ckpt/chk-*/per_key#0/db/*.sst > /dev/null 2>&1' "incremental: false: SST files inside the checkpoint"
check 'cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"' "incremental: false: the output is exact"

# A state directory others can write: refused.
d=$work/perm
write_job "$d" rocksdb 1 ""
mkdir -p "$d/state"; chmod 777 "$d/state"
(cd "$d" && exec "$RUNNEL" run job.yaml --quiet > /dev/null 2> err)
check '[ $? -ne 0 ] && grep -q "can be written by other users" "$d/err"' "a state directory others can write is refused"
exit $fail
