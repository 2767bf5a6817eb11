#!/usr/bin/env bash
# Write faults: a failed write, sync, rename or create anywhere (RocksDB's
# files, the state's checkpoint handle, the checkpoint store, the file
# sink's pending and output files) either is retried safely or fails the
# job with exit 2 and a message naming the path; never exit 0 with wrong
# output, and the next run resumes exact.
#
# 1. The sweep: a clean run under tests/torture/faultfs.c (preloaded, only
#    counting) lists every kind of write site the job meets (call and path
#    pattern). Then each kind fails once, in a run of its own: the first
#    call of that kind fails with ENOSPC and every write after it too (a
#    full disk), or with EIO alone (a transient error), alternately. Each
#    run must end with exit 0 and exactly the clean run's output, or with
#    exit 2 and an error naming a path under the run's directory; then a
#    run without the fault resumes from what is left, exit 0, exact.
#    RN_WRITE_FAULT_CASES=N takes N kinds spread over the list (all: the
#    long command); by default half of them, a sixth under a sanitizer
#    (RN_TEST_SANITIZED).
# 2. A real full disk (root only: mount refused or not root is a skip,
#    said so): a small tmpfs holds the state (once with a state.memory
#    that holds it all), then the checkpoints, then the output; the run
#    must fail with exit 2 naming the path (or end exact), and after the
#    tmpfs is enlarged the next run resumes exact.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
RN_FAULTFS=${RN_FAULTFS:-$(dirname "$RUNNEL")/tests/libfaultfs.so}
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/write_faults.XXXXXX")
mounted=()
cleanup() {
  for m in "${mounted[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
[ -f "$RN_FAULTFS" ] || { echo "FAIL: no fault shim at $RN_FAULTFS"; exit 1; }
# The shim comes ahead of a sanitizer's runtime in the library list.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0"

# KEYS keys, each EACH times in each of two windows (events 1 ms apart):
# KEYS * 2 windows of n = EACH. The window, KEYS * EACH ms, must divide
# the generator's first time (1700000000000 ms) so that windows align.
job() { # DIR STATE_DIR CKPT_DIR OUT KEYS EACH MEMORY RATE
  local dir=$1 st=$2 ck=$3 out=$4 keys=$5 each=$6 mem=$7 rate=$8
  local events=$((keys * each * 2)) win=$((keys * each / 1000))
  mkdir -p "$dir"
  cat > "$dir/job.yaml" <<YAML
name: write_faults
checkpoints: {interval: 50ms, dir: "$ck", retain: 2}
state: {backend: rocksdb, dir: "$st", memory: $mem}
sources:
  gen: {type: datagen, generator: sequence, events: $events, rate: $rate, keys: $keys, event_time: ts}
operators:
  per_key:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: ${win}s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: file, inputs: [per_key], path: "$out"}
YAML
}

# Whether OUT is exact: every window once, each with its EACH events.
exact() { # OUT KEYS EACH
  [ -f "$1" ] || return 1
  local lines bad dup
  lines=$(wc -l < "$1")
  bad=$(grep -vc "\"n\":$3," "$1")
  dup=$(sed -E 's/,"n".*//' "$1" | sort | uniq -d | wc -l)
  [ "$lines" -eq $(($2 * 2)) ] && [ "$bad" -eq 0 ] && [ "$dup" -eq 0 ]
}

# The error lines of a run's log (not warnings, progress or the shim's).
errors() { grep '^runnel: ' "$1" | grep -v '^runnel: \(warn\|info\|checkpoints\|resuming\)'; }

# ---- 1. the sweep -------------------------------------------------------
KEYS=5000 EACH=4
case_dir="$work/case"
job "$case_dir" "$case_dir/st" "$case_dir/ck" "$case_dir/out.jsonl" $KEYS $EACH 512KB 100000
cp "$case_dir/job.yaml" "$work/job.yaml"
LD_PRELOAD="$RN_FAULTFS" FAULTFS_PREFIX="$case_dir" FAULTFS_TRACE="$work/trace" RUNNEL_LOG=debug \
  "$RUNNEL" run "$work/job.yaml" > "$work/clean.log" 2>&1
check '[ $? -eq 0 ]' "the clean run (counting writes) succeeds"
check 'exact "$case_dir/out.jsonl" $KEYS $EACH' "the clean run's output is exact"
evicted=$(grep -o '[0-9]* evicted' "$work/clean.log" | awk '{s += $1} END {print s + 0}')
check '[ "$evicted" -gt 0 ]' "the state outgrows state.memory ($evicted values evicted to RocksDB)"
sort "$case_dir/out.jsonl" > "$work/ref.jsonl"
check 'grep -q "\.sst$" "$work/trace" && grep -q "_metadata" "$work/trace" && grep -q "pending" "$work/trace"' \
  "the job writes RocksDB files, checkpoints and sink files"

# Kinds of site: the call, and the path with its numbers and random parts
# as wildcards (pids, file numbers, content hashes, the run directory's
# random suffix).
awk '{print $2, $3}' "$work/trace" |
  sed -E 's/[0-9a-f]{16,}/*/g; s/-[0-9a-f]{8}(\/|$)/-*\1/g; s/[0-9]+/*/g' |
  awk '!seen[$0]++' > "$work/kinds"
nkinds=$(wc -l < "$work/kinds")
want=${RN_WRITE_FAULT_CASES:-}
if [ "$want" = all ]; then
  want=$nkinds
elif [ -z "$want" ]; then
  if [ -n "${RN_TEST_SANITIZED:-}" ]; then want=$(((nkinds + 5) / 6)); else want=$(((nkinds + 1) / 2)); fi
fi
[ "$want" -gt "$nkinds" ] && want=$nkinds
echo "sweep: $want of $nkinds kinds of write site"
ran=0 failed2=0 fine=0 bad=0 unreached=0
for ((i = 0; i < want; i++)); do
  line=$(sed -n "$((i * nkinds / want + 1))p" "$work/kinds")
  call=${line%% *} glob=${line#* }
  if ((i % 2 == 0)); then errno=ENOSPC sticky=1; else errno=EIO sticky=0; fi
  rm -rf "$case_dir"
  mkdir -p "$case_dir"
  cp "$work/job.yaml" "$case_dir/job.yaml"
  LD_PRELOAD="$RN_FAULTFS" FAULTFS_PREFIX="$case_dir" FAULTFS_CALL="$call" FAULTFS_GLOB="$glob" \
    FAULTFS_N=1 FAULTFS_ERRNO=$errno FAULTFS_STICKY=$sticky \
    "$RUNNEL" run "$case_dir/job.yaml" --quiet > "$case_dir/log" 2>&1
  rc=$?
  what="$call $glob ($errno$([ $sticky = 1 ] && echo ', then every write'))"
  ran=$((ran + 1))
  grep -q '^faultfs: ' "$case_dir/log" || unreached=$((unreached + 1))
  if [ $rc -eq 0 ]; then
    if sort "$case_dir/out.jsonl" 2>/dev/null | cmp -s - "$work/ref.jsonl"; then
      fine=$((fine + 1))
    else
      echo "FAIL: $what: exit 0 with output that differs from the clean run's"
      bad=$((bad + 1))
    fi
    continue
  fi
  if [ $rc -ne 2 ]; then
    echo "FAIL: $what: exit $rc (want 0 or 2)"; tail -5 "$case_dir/log"
    bad=$((bad + 1))
    continue
  fi
  failed2=$((failed2 + 1))
  if ! errors "$case_dir/log" | grep -q "$case_dir/"; then
    echo "FAIL: $what: exit 2 without an error naming a path"; tail -5 "$case_dir/log"
    bad=$((bad + 1))
  fi
  "$RUNNEL" run "$case_dir/job.yaml" --quiet > "$case_dir/resume.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ] || ! sort "$case_dir/out.jsonl" | cmp -s - "$work/ref.jsonl"; then
    echo "FAIL: $what: the resume after it (exit $rc) is not exact"
    tail -5 "$case_dir/resume.log"
    bad=$((bad + 1))
  fi
done
echo "sweep: $ran cases: $fine exact with exit 0, $failed2 exit 2 then resumed," \
  "$unreached where the site was not reached; $bad wrong"
check '[ "$bad" -eq 0 ]' "every write fault ends exact or with exit 2 naming a path, and resumes exact"
check '[ "$failed2" -gt 0 ]' "some write faults fail the job (the sweep reaches fatal sites)"
check '[ "$unreached" -lt "$ran" ]' "the faults were injected"

# ---- 2. a real full disk ------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  echo "skip: the full-tmpfs cases need root to mount a tmpfs (not root here)"
  exit $fail
fi
mkdir -p "$work/probe"
if ! mount -t tmpfs -o size=1m,mode=0700 tmpfs "$work/probe" 2>"$work/mount.err"; then
  echo "skip: the full-tmpfs cases: mount refused: $(cat "$work/mount.err")"
  exit $fail
fi
umount "$work/probe"

# What is on the small tmpfs: the state (RocksDB's files and the
# checkpoints' staging; "state in memory": a state.memory that holds all
# of it, so that only the checkpoints write RocksDB, which is where a full
# disk once lost the values a checkpoint took and the job ended with exit
# 0 and a thousand wrong windows), the checkpoint store, the output file.
# Smaller under a sanitizer (ten times slower), on a smaller disk.
FKEYS=100000 FEACH=5 FSIZE=3m
[ -n "${RN_TEST_SANITIZED:-}" ] && FKEYS=40000 FSIZE=1m
for where in state-in-memory state checkpoints output; do
  d="$work/full-$where" m="$work/full-$where/mnt"
  mkdir -p "$m"
  mount -t tmpfs -o size=$FSIZE,mode=0700 tmpfs "$m" || { echo "FAIL: mount $m"; fail=1; continue; }
  mounted+=("$m")
  st="$d/st" ck="$d/ck" out="$d/out.jsonl" mem=32MB
  case $where in
    state-in-memory) st="$m/st" mem=128MB ;;
    state) st="$m/st" ;;
    checkpoints) ck="$m/ck" ;;
    output) out="$m/out.jsonl" ;;
  esac
  job "$d" "$st" "$ck" "$out" $FKEYS $FEACH $mem 1000000
  "$RUNNEL" run "$d/job.yaml" --quiet > "$d/log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    check 'exact "$out" $FKEYS $FEACH' "full $where disk: the run ended with exit 0, exact"
  else
    check '[ $rc -eq 2 ]' "full $where disk: the job fails with exit 2 (exit $rc)"
    check 'errors "$d/log" | grep -q "$m/.*No space left on device"' \
      "full $where disk: the error names the path and ENOSPC"
  fi
  mount -o remount,size=512m "$m"
  "$RUNNEL" run "$d/job.yaml" --quiet > "$d/resume.log" 2>&1
  check '[ $? -eq 0 ]' "full $where disk: the run after the tmpfs is enlarged succeeds"
  check 'exact "$out" $FKEYS $FEACH' "full $where disk: its output is exact"
done
exit $fail
