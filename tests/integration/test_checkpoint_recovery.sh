#!/usr/bin/env bash
# Recovery from damaged checkpoints and from crashes at named points.
# A job (datagen -> tumbling windows -> exactly-once file sink,
# checkpoints every 200 ms) is killed after a few checkpoints; then, on
# copies of what it left:
#  - each kind of file of the newest checkpoint is damaged (a flipped
#    byte, a truncation, a deletion): the damage is reported, recovery
#    comes from the previous checkpoint (one damaged metadata copy: from
#    the same one, read from the other copy) and the output equals a
#    clean run's byte for byte;
#  - a job whose sink cannot take back output refuses to go back, saying
#    what is damaged.
# Then the job is crashed at every named crash point (RN_CRASH_AT) and
# run again: exit status 77 at the point, exact output after.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/recovery.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

write_job() { # DIR SINK-TYPE RETAIN
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: recovery
checkpoints: {interval: 200ms, dir: ./ckpt, retain: ${3:-3}}
state: {backend: rocksdb, dir: ./state, memory: 16MB}
sources:
  gen: {type: datagen, generator: sequence, events: 600000, rate: 100000, keys: 100, event_time: ts}
operators:
  per_key:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: ${2:-file}, inputs: [per_key]$([ "${2:-file}" = file ] && echo ", path: ./out.jsonl")}
YAML
}
run() { (cd "$1" && "$RUNNEL" run job.yaml --quiet >> log 2>&1); }
newest() { ls "$1/ckpt" | grep -E '^chk-[0-9]+$' | sort | tail -1; }
id_of() { echo "$((10#${1#chk-}))"; }
flip() { # FILE OFFSET
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

write_job "$work/clean"
run "$work/clean"
check '[ "$(wc -l < "$work/clean/out.jsonl")" -eq 60000 ]' "clean run: 600 windows of 100 keys"

# The base: killed after at least three checkpoints.
write_job "$work/base"
(cd "$work/base" && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
# (The deadline, 150 s, only catches a hang: a loaded sanitizer run is slow.)
for _ in $(seq 3000); do
  [ "$(ls "$work/base/ckpt" 2>/dev/null | grep -cE '^chk-[0-9]+$')" -ge 3 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -9 $pid; wait $pid 2>/dev/null
top=$(newest "$work/base")
prev=$(ls "$work/base/ckpt" | grep -E '^chk-[0-9]+$' | sort | tail -2 | head -1)
check '[ -n "$top" ] && [ "$top" != "$prev" ]' "the killed run left checkpoints ($prev, $top)"
echo "newest $top, previous $prev"

# A shared SST file the newest checkpoint names and the previous does not.
own_sst() {
  local f
  for f in $(grep -o 'shared/[0-9a-f]*\.sst' "$1/ckpt/$top/_metadata" | sort -u); do
    grep -q "$f" "$1/ckpt/$prev/_metadata" || { echo "$1/ckpt/$f"; return; }
  done
}

case_run() { # NAME EXPECT-ID DAMAGE-COMMAND
  local d=$work/case-$1 want=$2
  cp -a "$work/base" "$d"
  : > "$d/log"
  (cd "$d" && eval "$3")
  run "$d"
  local rc=$?
  check '[ $rc -eq 0 ]' "$1: the job recovers and finishes"
  check 'grep -q "resuming from checkpoint $want\$" "$d/log"' "$1: resumed from checkpoint $want"
  if [ "$want" != "$(id_of "$top")" ]; then
    check 'grep -q "checkpoint $(id_of "$top") in .* is damaged" "$d/log"' "$1: the damage is reported"
  fi
  check 'cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"' "$1: the output equals the clean run's"
}
t=$(id_of "$top"); p=$(id_of "$prev")
case_run meta-one-copy "$t" "flip ckpt/$top/_metadata 40"
check 'grep -q "_metadata is damaged; read its copy" "$work/case-meta-one-copy/log"' \
  "meta-one-copy: the damaged copy is reported"
case_run meta-both "$p" "flip ckpt/$top/_metadata 40; flip ckpt/$top/_metadata.copy 40"
case_run meta-truncated "$p" "truncate -s 100 ckpt/$top/_metadata ckpt/$top/_metadata.copy"
case_run handle-flipped "$p" "flip ckpt/$top/per_key#0/handle 10"
case_run manifest-truncated "$p" "truncate -s 10 ckpt/$top/per_key#0/db/MANIFEST-*"
case_run current-deleted "$p" "rm ckpt/$top/per_key#0/db/CURRENT"
case_run sink-file-deleted "$p" "rm ckpt/$top/out#0/file"
case_run sink-file-flipped "$p" "flip ckpt/$top/out#0/file 5"
sst=$(own_sst "$work/base")
check '[ -n "$sst" ]' "the newest checkpoint has an SST file of its own"
case_run sst-flipped "$p" "flip ${sst/$work\/base/.} 100"
case_run sst-truncated "$p" "truncate -s 50 ${sst/$work\/base/.}"

# A sink that cannot take back output: no going back, and why.
d=$work/case-stdout
cp -a "$work/base" "$d"
write_job "$d" stdout
(cd "$d" && flip "ckpt/$top/per_key#0/handle" 10 && exec "$RUNNEL" run job.yaml --quiet > /dev/null 2> err)
rc=$?
check '[ $rc -ne 0 ]' "stdout sink: refuses to go back past a damaged checkpoint (rc $rc)"
check 'grep -q "damaged.*cannot take back" "$d/err"' "stdout sink: says what is damaged and why"

# Nothing intact: refused, not started from the beginning silently.
d=$work/case-none
cp -a "$work/base" "$d"
for c in $(ls "$d/ckpt" | grep -E '^chk-[0-9]+$'); do truncate -s 0 "$d/ckpt/$c/_metadata" "$d/ckpt/$c/_metadata.copy"; done
(cd "$d" && exec "$RUNNEL" run job.yaml --quiet > /dev/null 2> err)
check '[ $? -ne 0 ] && grep -q "no intact checkpoint" "$d/err"' "no intact checkpoint: refused with a message"

# Crash points: exit 77 there, exact output after a plain restart.
for point in ckpt.after_snapshot ckpt.after_files ckpt.meta_before_rename \
             ckpt.meta_after_rename ckpt.meta_before_dir_fsync ckpt.after_commit \
             ckpt.retention_mid ckpt.restore_mid; do
  d=$work/crash-$point
  write_job "$d" file 1
  if [ $point = ckpt.restore_mid ]; then
    # A checkpoint to restore first: crash right after one commits.
    (cd "$d" && RN_CRASH_AT=ckpt.after_commit "$RUNNEL" run job.yaml --quiet >> log 2>&1)
  fi
  (cd "$d" && RN_CRASH_AT=$point "$RUNNEL" run job.yaml --quiet >> log 2>&1)
  rc=$?
  check '[ $rc -eq 77 ]' "$point: the run exits at the crash point (rc $rc)"
  if [ $point = ckpt.retention_mid ]; then
    # The checkpoint being removed was renamed out of sight first.
    check 'ls "$d/ckpt" | grep -q "\.deleting$"' "$point: the checkpoint half removed is out of sight (.deleting)"
  fi
  run "$d"
  check '[ $? -eq 0 ] && cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"' "$point: the next run's output is exact"
  if [ $point = ckpt.retention_mid ]; then
    check '! ls "$d/ckpt" | grep -q "\.deleting$"' "$point: the next run removed what was left of it"
  fi
done
exit $fail
