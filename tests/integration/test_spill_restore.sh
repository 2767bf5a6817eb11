#!/usr/bin/env bash
# Checkpoints of state far beyond state.memory restore exactly: jobs whose
# window timers spill to RocksDB (tumbling: every key's timer at one time,
# which a spill cuts in two; sliding; session, whose timers move as
# sessions grow) are interrupted by kill -9, SIGTERM (final checkpoint) and
# `runnel stop --savepoint`, at parallelism 1 and 3, then resumed; every
# checkpoint `checkpoints --verify` passes, the resume finishes, and the
# output equals a clean run's: no window lost, duplicated or wrong. The
# memory backend (which keeps its timers in memory) is run the same way.
# RN_CASES (a regular expression over "KIND BACKEND pN HOW") picks cases.
# Every wait is for an event (a checkpoint directory, the REST endpoint, a
# line in the log); deadlines only catch hangs.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/spillrestore.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
DEADLINE=${RN_TEST_DEADLINE:-300} # seconds: only catches hangs

# KIND -> window, keys, events: each key's timers outgrow 1MB of state.
# The source runs 16 s at its rate, the timers spill in its first fifth:
# the interruption must come while it runs, also on a loaded machine
# (at 8 s a run under load once ended before `runnel stop` reached it).
window_of() {
  case $1 in
  tumbling) echo "{type: tumbling, size: 1h}" ;;
  sliding) echo "{type: sliding, size: 1h, slide: 20m}" ;;
  session) echo "{type: session, gap: 1h}" ;;
  esac
}
keys_of() { case $1 in tumbling) echo 10000 ;; sliding) echo 6000 ;; session) echo 4000 ;; esac; }

write_job() { # DIR KIND BACKEND PARALLELISM [REST-PORT]
  local keys events rest=""
  [ -n "${5:-}" ] && rest="rest: {listen: 127.0.0.1:$5}"
  keys=$(keys_of "$2")
  events=$((keys * 5))
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: spill
parallelism: $4
checkpoints: {interval: 100ms, dir: ./ck}
state: {backend: $3, dir: ./st, memory: 1MB}
$rest
sources:
  gen: {type: datagen, generator: sequence, events: $events, rate: $((events / 16)), keys: $keys, event_time: ts}
operators:
  w:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: $(window_of "$2")
    aggregates: {n: count(), total: sum(value), hi: max(value)}
sinks:
  out: {type: file, inputs: [w], path: ./out.jsonl}
YAML
}
# Waits until checkpoint N of DIR is complete (its metadata is written),
# or the job (PID) ended. @returns 1 on the deadline.
wait_ckpt() {
  local d=$1 n=$2 pid=$3 t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$DEADLINE" ]; do
    [ -f "$d/ck/$(printf 'chk-%08d' "$n")/_metadata" ] && return 0
    kill -0 "$pid" 2> /dev/null || return 0
    sleep 0.02
  done
  echo "deadline: no checkpoint $n in $d"
  return 1
}
addr() { grep -o '127.0.0.1:[0-9]*' "$1/job.yaml"; }

# Waits until the job in DIR (process PID) spilled timers to the store
# (its debug log says so) and a checkpoint begun after that completed, or
# the job ended. @returns 1 on the deadline.
wait_spilled_ckpt() {
  local d=$1 pid=$2 t0=$SECONDS n=""
  while [ $((SECONDS - t0)) -lt "$DEADLINE" ]; do
    kill -0 "$pid" 2> /dev/null || return 0
    if [ -z "$n" ]; then
      if grep -q "spilled to the store" "$d/log"; then
        n=$(grep -o "checkpoint [0-9]* triggered" "$d/log" | tail -1 | grep -o "[0-9]*")
        n=$((${n:-0} + 1))
      fi
    elif [ -f "$d/ck/$(printf 'chk-%08d' "$n")/_metadata" ]; then
      return 0
    fi
    sleep 0.02
  done
  echo "deadline: no checkpoint after a spill in $d"
  return 1
}
wait_rest() {
  local d=$1 t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$DEADLINE" ]; do
    curl -sf "http://$(addr "$d")/status" > /dev/null 2>&1 && return 0
    sleep 0.02
  done
  return 1
}

# Compares DIR's output with the clean run of KIND: prints "lost dup wrong".
compare() {
  awk -F'"n":' '{ print $1 }' "$1" | sort | uniq -d | wc -l > "$work/dup"
  # Windows: everything before the aggregates names one.
  join -v1 <(awk -F'"n":' '{ print $1 }' "$2" | sort -u) \
    <(awk -F'"n":' '{ print $1 }' "$1" | sort -u) | wc -l > "$work/lost"
  comm -13 <(sort -u "$2") <(sort -u "$1") | wc -l > "$work/wrong"
  echo "$(cat "$work/lost") $(cat "$work/dup") $(cat "$work/wrong")"
}

# One case: KIND BACKEND PARALLELISM HOW (kill|term|savepoint).
run_case() {
  local kind=$1 be=$2 par=$3 how=$4 d=$work/$1-$2-p$3-$4 pid rc at sp name
  name="$kind $be p$par $how"
  [[ "$name" =~ ${RN_CASES:-.} ]] || return 0
  if [ "$how" = savepoint ]; then
    write_job "$d" "$kind" "$be" "$par" $((20000 + RANDOM % 30000))
  else
    write_job "$d" "$kind" "$be" "$par"
  fi
  (cd "$d" && RUNNEL_LOG=debug exec "$RUNNEL" run job.yaml >> log 2>&1) &
  pid=$!
  [ "$how" = savepoint ] && wait_rest "$d"
  # A checkpoint of spilled timers (the memory backend: any checkpoint),
  # while the source (16 s at its rate) has events to go.
  if [ "$be" = rocksdb ]; then
    wait_spilled_ckpt "$d" "$pid"
  else
    wait_ckpt "$d" 2 "$pid"
  fi
  if ! kill -0 $pid 2> /dev/null; then
    echo "FAIL: $name: the job ended before it could be interrupted"
    fail=1
    return
  fi
  case $how in
  kill)
    kill -9 $pid
    wait $pid 2> /dev/null
    ;;
  term)
    kill -TERM $pid
    wait $pid
    rc=$?
    check '[ $rc -eq 0 ] && grep -q "job stopped at checkpoint" "$d/log"' "$name: SIGTERM stops with a final checkpoint (rc $rc)"
    ;;
  savepoint)
    sp=$("$RUNNEL" stop "$(addr "$d")" --savepoint "$d/ck/savepoints/sp" 2> "$d/stop.err" | tail -1)
    wait $pid
    rc=$?
    check '[ $rc -eq 0 ] && [ -d "$sp" ]' "$name: runnel stop --savepoint stops the job (rc $rc, ${sp:-no savepoint})"
    ;;
  esac
  if [ "$be" = rocksdb ]; then
    check 'grep -q "spilled to the store" "$d/log"' "$name: timers spilled before the interruption"
  fi
  "$RUNNEL" checkpoints "$d/ck" --verify > "$d/verify" 2>&1
  check '! grep -E "^(chk-[0-9]+|sp) " "$d/verify" | grep -qv "ok (verified)" && grep -q "ok (verified)" "$d/verify"' \
    "$name: checkpoints --verify passes every checkpoint"
  # The rest as fast as it goes: the rate is no part of the state.
  sed -i 's/rate: [0-9]*/rate: 0/' "$d/job.yaml"
  if [ "$how" = savepoint ]; then
    (cd "$d" && RUNNEL_LOG=debug "$RUNNEL" run job.yaml --from-savepoint "$sp" >> log2 2>&1)
  else
    (cd "$d" && RUNNEL_LOG=debug "$RUNNEL" run job.yaml >> log2 2>&1)
  fi
  rc=$?
  check '[ $rc -eq 0 ] && grep -q "resuming from" "$d/log2"' "$name: the resume finishes (rc $rc$(grep -m1 -E 'failed|error|restore:' "$d/log2" | sed 's/^/: /'))"
  if [ "$be" = rocksdb ]; then
    check 'grep -q "timers: [0-9]* written to the store, [1-9][0-9]* loaded back" "$d/log2"' "$name: the resumed run loaded stored timers back"
  fi
  read -r lost dup wrong <<< "$(compare "$d/out.jsonl" "$work/clean-$kind.jsonl")"
  check '[ "$lost" -eq 0 ] && [ "$dup" -eq 0 ] && [ "$wrong" -eq 0 ]' \
    "$name: output equals a clean run's (lost $lost, duplicated $dup, wrong $wrong)"
}

for kind in tumbling sliding session; do
  d=$work/clean-$kind
  write_job "$d" "$kind" memory 1
  sed -i 's/memory: 1MB/memory: 256MB/; s/rate: [0-9]*/rate: 0/' "$d/job.yaml"
  (cd "$d" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
  check '[ $? -eq 0 ]' "$kind: the clean run finishes"
  cp "$d/out.jsonl" "$work/clean-$kind.jsonl"
  n=$(wc -l < "$work/clean-$kind.jsonl")
  check '[ "$n" -ge "$(keys_of $kind)" ]' "$kind: the clean run has $n windows"
done

run_case tumbling rocksdb 1 kill
run_case tumbling rocksdb 3 term
run_case tumbling rocksdb 1 savepoint
run_case sliding rocksdb 3 kill
run_case sliding rocksdb 1 term
run_case sliding rocksdb 3 savepoint
run_case session rocksdb 1 kill
run_case session rocksdb 3 term
run_case session rocksdb 1 savepoint
run_case tumbling memory 3 kill
run_case session memory 1 term
exit $fail
