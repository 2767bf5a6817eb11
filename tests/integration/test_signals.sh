#!/usr/bin/env bash
# tests/integration/test_signals.sh: signals and exit codes of `runnel run`
# (docs/checkpoints.md "Stopping", runnel --help).
#
# - A SIGTERM while the job is still starting (here: while it reads its
#   job file, a FIFO this test writes only after the signal) is not the
#   default death (exit 143): the job stops at a final checkpoint as soon
#   as it exists, exits 0, and the next run ends with a clean run's output.
# - A second signal cancels: the process ends (a deadline only catches a
#   hang), exits 2, and the next run ends with a clean run's output. Both
#   signals are made pending while the process is stopped (SIGSTOP), so
#   the second always comes before the final checkpoint could complete.
# - Two signals before the job exists end the process with 2 at once.
# - Exit codes: a bad job file 1; a restore refused (a checkpoint of
#   another parallelism, a savepoint that is not there, every checkpoint
#   damaged) 2, not 1; runnel --help documents them.
#
# Env: RUNNEL, RN_TEST_TMP.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/signals.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
# Waits for process $1 to end, at most $2 seconds (a hang, not a timing).
ended_within() {
  local i
  for i in $(seq $(($2 * 20))); do
    kill -0 "$1" 2> /dev/null || return 0
    sleep 0.05
  done
  return 1
}

write_job() { # FILE EVENTS RATE
  cat > "$1" <<YAML
name: signals
parallelism: 2
checkpoints: {interval: 200ms, dir: ./ckpt}
state: {backend: rocksdb, dir: ./state, memory: 16MB}
sources:
  gen: {type: datagen, generator: sequence, events: $2, rate: $3, keys: 50, event_time: ts}
operators:
  w:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: file, inputs: [w], path: ./out.jsonl}
YAML
}

mkdir -p "$work/clean"
write_job "$work/job.src" 200000 100000
cp "$work/job.src" "$work/clean/job.yaml"
(cd "$work/clean" && "$RUNNEL" run job.yaml --quiet)
sort "$work/clean/out.jsonl" > "$work/clean.sorted"
check '[ "$(wc -l < "$work/clean.sorted")" -eq 10000 ]' "clean run: 200 windows of 50 keys"

# ---- SIGTERM during start-up ----------------------------------------------------------
d=$work/early
mkdir -p "$d"
mkfifo "$d/job.yaml"
(cd "$d" && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
# Opening the FIFO for writing waits until runnel opens it to read its
# job file: the signal comes while the job is being made.
timeout 120 bash -c 'exec 3> "$1"; kill -TERM "$2"; cat "$3" >&3' _ "$d/job.yaml" $pid "$work/job.src"
wrote=$?
ended_within $pid 300
wait $pid
rc=$?
check '[ $wrote -eq 0 ] && [ $rc -eq 0 ] && grep -q "stopped at checkpoint" "$d/log"' \
  "a SIGTERM while the job starts stops it at a final checkpoint, exit 0 (rc $rc: $(head -c 300 "$d/log"))"
rm "$d/job.yaml"
cp "$work/job.src" "$d/job.yaml"
(cd "$d" && "$RUNNEL" run job.yaml --quiet >> log 2>&1)
rc=$?
check '[ $rc -eq 0 ] && cmp -s <(sort "$d/out.jsonl") "$work/clean.sorted"' \
  "after a SIGTERM at start-up the next run ends with a clean run's output (rc $rc)"

# ---- two signals before the job exists -------------------------------------------------
d=$work/early2
mkdir -p "$d"
mkfifo "$d/job.yaml"
(cd "$d" && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
timeout 120 bash -c 'exec 3> "$1"; kill -INT "$2"; kill -TERM "$2"; sleep 60' _ "$d/job.yaml" $pid &
holder=$!
ended_within $pid 120
wait $pid
rc=$?
kill $holder 2> /dev/null
wait $holder 2> /dev/null
check '[ $rc -eq 2 ] && grep -q "stopped before the job started" "$d/log"' \
  "two signals before the job exists end the process with 2 (rc $rc: $(head -c 200 "$d/log"))"

# ---- a second signal cancels ----------------------------------------------------------
d=$work/cancel
mkdir -p "$d"
write_job "$d/job.yaml" 200000 20000
(cd "$d" && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
for _ in $(seq 1200); do
  ls -d "$d"/ckpt/chk-[0-9]*[0-9] > /dev/null 2>&1 && break
  sleep 0.05
done
kill -STOP $pid
kill -INT $pid
kill -TERM $pid
kill -CONT $pid
ended_within $pid 60
ended=$?
[ $ended -eq 0 ] || kill -9 $pid
wait $pid
rc=$?
check '[ $ended -eq 0 ] && [ $rc -eq 2 ] && grep -q "stopped before its end" "$d/log"' \
  "a second signal cancels the job: it ends, exit 2 (rc $rc: $(head -c 300 "$d/log"))"
(cd "$d" && "$RUNNEL" run job.yaml --quiet >> log 2>&1)
rc=$?
check '[ $rc -eq 0 ] && cmp -s <(sort "$d/out.jsonl") "$work/clean.sorted"' \
  "after a cancel the next run ends with a clean run's output (rc $rc)"

# ---- exit codes ------------------------------------------------------------------------
d=$work/codes
mkdir -p "$d"
printf 'name: bad\nsources: {gen: {type: nosuch}}\n' > "$d/bad.yaml"
(cd "$d" && "$RUNNEL" run bad.yaml --quiet > bad.log 2>&1)
rc=$?
check '[ $rc -eq 1 ]' "a bad job file exits 1 (rc $rc: $(head -c 200 "$d/bad.log"))"
cp "$work/clean/job.yaml" "$d/job.yaml"
cp -r "$work/clean/ckpt" "$d/ckpt"
(cd "$d" && "$RUNNEL" run job.yaml --set parallelism=3 --quiet > par.log 2>&1)
rc=$?
check '[ $rc -eq 2 ] && grep -q "parallelism" "$d/par.log"' \
  "a checkpoint of another parallelism is refused with exit 2 (rc $rc: $(head -c 200 "$d/par.log"))"
(cd "$d" && "$RUNNEL" run job.yaml --from-savepoint "$d/nothing-here" --quiet > sp.log 2>&1)
rc=$?
check '[ $rc -eq 2 ]' "a savepoint that is not there is refused with exit 2 (rc $rc: $(head -c 200 "$d/sp.log"))"
for m in "$d"/ckpt/chk-*/_metadata "$d"/ckpt/chk-*/_metadata.copy; do
  printf 'x' | dd of="$m" bs=1 seek=10 conv=notrunc status=none
done
(cd "$d" && "$RUNNEL" run job.yaml --quiet > dmg.log 2>&1)
rc=$?
check '[ $rc -eq 2 ]' "every checkpoint damaged: refused with exit 2 (rc $rc: $(head -c 200 "$d/dmg.log"))"
"$RUNNEL" --help > "$d/help.txt" 2>&1
check 'grep -q "exit status: 0 done" "$d/help.txt" && grep -q "1 bad arguments or job file" "$d/help.txt" && grep -q "2 the job failed or cannot go on" "$d/help.txt"' \
  "runnel --help documents the exit codes"
exit $fail
