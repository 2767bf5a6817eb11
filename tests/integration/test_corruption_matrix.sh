#!/usr/bin/env bash
# The corruption matrix: every kind of file in a checkpoint and in a
# savepoint, damaged every way (a flipped byte, truncated to half, emptied,
# deleted) and forged (fields rewritten and every checksum recomputed, as a
# buggy tool or an attacker would: tests/integration/ckpt_forge.py), then
# resumed. Each case must end one of two ways:
#  - exit 0 with the output of a clean run, byte for byte (every window
#    once and right): from the same checkpoint (one metadata copy damaged)
#    or from the previous one (the file sink takes back what it wrote);
#  - refused: a non-zero exit (not a signal) and a message naming the
#    damaged file or field.
# Never a crash, never exit 0 with wrong output. Damage to the newest
# checkpoint must resume exact (the file sink allows going back); damage
# to a savepoint given with --from-savepoint has nothing to go back to.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
src=${RN_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
forge() { python3 "$src/tests/integration/ckpt_forge.py" "$@"; }
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/corrupt.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"; kill -9 $(jobs -p) 2>/dev/null' EXIT
fail=0 ncase=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
port=$((20000 + ($$ * 11) % 30000))

backend=rocksdb
write_job() { # DIR [RATE] [REST-PORT]
  mkdir -p "$1"
  cat > "$1/job.yaml" <<YAML
name: matrix
checkpoints: {interval: 100ms, dir: ./ckpt, retain: 3}
state: {backend: $backend, dir: ./state, memory: 16MB}
$([ -n "${3:-}" ] && echo "rest: {listen: 127.0.0.1:$3}")
sources:
  gen: {type: datagen, generator: sequence, events: 60000, keys: 20, event_time: ts$([ -n "${2:-}" ] && echo ", rate: $2")}
operators:
  per_key:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 100ms}
    aggregates: {n: count(), total: sum(value)}
sinks:
  out: {type: file, inputs: [per_key], path: ./out.jsonl}
YAML
}
complete() { ls "$1" 2>/dev/null | grep -E '^chk-[0-9]+$' | sort; }
id_of() { echo "$((10#${1#chk-}))"; }

write_job "$work/clean"
(cd "$work/clean" && "$RUNNEL" run job.yaml --quiet)
check '[ "$(wc -l < "$work/clean/out.jsonl")" -eq 12000 ]' "clean run: 600 windows of 20 keys"

# The base: a run slowed to 20000 events a second, a savepoint taken
# through the endpoint, then frozen (SIGSTOP) once two checkpoints
# followed the savepoint and the newest holds sink bytes, copied, killed.
write_job "$work/run" 20000 "$port"
(cd "$work/run" && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
for _ in $(seq 600); do
  [ "$(complete "$work/run/ckpt" | wc -l)" -ge 2 ] || ! kill -0 $pid 2> /dev/null && break
  sleep 0.05
done
sp=
for _ in $(seq 20); do
  kill -0 $pid 2> /dev/null || break
  sp=$("$RUNNEL" savepoint "127.0.0.1:$port" 2> /dev/null | tail -1)
  [ -n "$sp" ] && [ -f "$sp/out#0/file" ] && break
  sp=
done
check '[ -n "$sp" ]' "a savepoint with sink bytes was taken ($sp)"
spid=$(forge meta-id "$sp" 2> /dev/null || echo 0)
frozen=0
for _ in $(seq 1200); do
  kill -0 $pid 2> /dev/null || break
  top=$(complete "$work/run/ckpt" | tail -1)
  if [ -n "$top" ] && [ -f "$work/run/ckpt/$top/out#0/file" ] &&
     [ "$(complete "$work/run/ckpt" | wc -l)" -ge 3 ] && [ "$(id_of "$top")" -ge $((spid + 2)) ]; then
    kill -STOP $pid
    # Checked again while frozen: a checkpoint may have completed meanwhile.
    top=$(complete "$work/run/ckpt" | tail -1)
    if [ -f "$work/run/ckpt/$top/out#0/file" ]; then
      cp -a "$work/run" "$work/base"
      frozen=1
      break
    fi
    kill -CONT $pid
  fi
  sleep 0.02
done
kill -9 $pid 2> /dev/null; wait $pid 2> /dev/null
check '[ $frozen -eq 1 ]' "the run left checkpoints after its savepoint, the newest with sink bytes"
[ $frozen -eq 1 ] || exit 1
rm -rf "$work/base/ckpt"/*.inprogress
write_job "$work/base"    # resumes run at full speed, without the endpoint
sp=${sp/$work\/run/$work\/base}
top=$(complete "$work/base/ckpt" | tail -1)
prev=$(complete "$work/base/ckpt" | tail -2 | head -1)
echo "checkpoints $(complete "$work/base/ckpt" | tr '\n' ' '); savepoint $sp"

damage() { # HOW FILE
  local size
  size=$(stat -c %s "$2")
  case $1 in
    flip)
      local b
      b=$(od -An -tu1 -j $((size / 2)) -N1 "$2" | tr -d ' ')
      printf "$(printf '\\%03o' $(((b + 1) % 256)))" |
        dd of="$2" bs=1 seek=$((size / 2)) conv=notrunc 2> /dev/null ;;
    truncate) truncate -s $((size / 2)) "$2" ;;
    empty) truncate -s 0 "$2" ;;
    delete) rm -f "$2" ;;
  esac
}

# checkpoints --verify: exit 0 when all is intact; 2 naming what is
# damaged, one metadata copy included (the run reads the other); 2 when no
# checkpoint is intact.
d=$work/verify
cp -a "$work/base" "$d"
"$RUNNEL" checkpoints "$d/ckpt" --verify > "$d/out" 2>&1
check '[ $? -eq 0 ] && [ "$(grep -c "ok (verified)" "$d/out")" -ge 4 ]' "verify: intact checkpoints and the savepoint pass"
damage flip "$d/ckpt/$top/_metadata.copy"
"$RUNNEL" checkpoints "$d/ckpt" --verify > "$d/out" 2>&1
check '[ $? -eq 2 ] && grep -q "$top.*_metadata.copy fails its checksum" "$d/out"' "verify: a damaged _metadata.copy fails (exit 2)"
forge handle-states "$d/ckpt/$prev/per_key#0/handle" 0xfffffff0 && forge rehash "$d/ckpt/$prev" "$d/ckpt"
"$RUNNEL" checkpoints "$d/ckpt" --verify > "$d/out" 2>&1
check '[ $? -eq 2 ] && grep -q "$prev.*handle.*states" "$d/out"' "verify: a forged handle fails as restore would refuse it"
for c in $(complete "$d/ckpt"); do truncate -s 0 "$d/ckpt/$c/_metadata" "$d/ckpt/$c/_metadata.copy"; done
"$RUNNEL" checkpoints "$d/ckpt" --verify > "$d/out" 2>&1
check '[ $? -eq 2 ] && grep -q "damaged" "$d/out"' "verify: no intact checkpoint is exit 2"

# The files of a checkpoint directory D (relative to the root R), one per
# kind: KIND PATH lines. SST files: one the metadata names that no other
# checkpoint does (shared/ for a checkpoint, its own copy in a savepoint).
kinds() { # R D
  local d=$1/$2 f
  echo "metadata $2/_metadata"
  echo "metadata-copy $2/_metadata.copy"
  echo "handle $2/per_key#0/handle"
  echo "manifest $(cd "$1" && ls "$2"/per_key#0/db/MANIFEST-* | head -1)"
  echo "current $2/per_key#0/db/CURRENT"
  echo "options $(cd "$1" && ls "$2"/per_key#0/db/OPTIONS-* | head -1)"
  echo "sink-file $2/out#0/file"
  for f in $(grep -o '"path": "[^"]*\.sst"' "$d/_metadata" | cut -d'"' -f4 | sort -u); do
    if [ "$(grep -l "\"$f\"" "$1"/chk-*/_metadata 2> /dev/null | wc -l)" -le 1 ]; then
      echo "sst $f"
      return
    fi
  done
  echo "sst"
}


# NAME WANT NEEDLE DAMAGE-COMMAND [RUN-ARGS...]: WANT is exact (exit 0 and
# the clean output required), or any (exact, or refused naming NEEDLE).
case_run() {
  local name=$1 want=$2 needle=$3 cmd=$4
  shift 4
  local d=$work/case
  rm -rf "$d"
  cp -a "$work/base" "$d"
  (cd "$d" && eval "$cmd") || { echo "FAIL: $name: the damage could not be made"; fail=1; return; }
  (cd "$d" && exec "$RUNNEL" run job.yaml --quiet "$@" > /dev/null 2> err)
  local rc=$?
  ncase=$((ncase + 1))
  if [ $rc -ge 128 ]; then
    echo "FAIL: $name: killed by signal $((rc - 128)): $(tail -3 "$d/err")"
    fail=1
  elif [ $rc -eq 0 ]; then
    if cmp -s "$d/out.jsonl" "$work/clean/out.jsonl"; then
      echo "ok: $name: resumed exact"
    else
      echo "FAIL: $name: exit 0 with wrong output ($(wc -l < "$d/out.jsonl") lines, $(sort "$d/out.jsonl" | uniq -d | wc -l) duplicated)"
      fail=1
    fi
  elif [ "$want" = exact ]; then
    echo "FAIL: $name: refused (rc $rc) where going back was possible: $(tail -1 "$d/err")"
    fail=1
  elif grep -qF -- "$needle" "$d/err"; then
    echo "ok: $name: refused (rc $rc): $(grep -F -- "$needle" "$d/err" | head -1 | cut -c1-200)"
  else
    echo "FAIL: $name: refused (rc $rc) without naming $needle: $(tail -1 "$d/err")"
    fail=1
  fi
}

# The newest checkpoint, every kind of file, every damage: resumed exact
# (from the previous checkpoint, or from the other metadata copy).
while read -r kind path; do
  [ -n "$path" ] || { echo "FAIL: no $kind file in $top"; fail=1; continue; }
  for how in flip truncate empty delete; do
    case_run "checkpoint $kind $how" exact "" "damage $how 'ckpt/$path'"
  done
done < <(kinds "$work/base/ckpt" "$top")

# Forged: fields rewritten, checksums recomputed. The check that catches
# each makes the checkpoint damaged, and the job goes back one.
m="forge meta ckpt/$top"
rh="forge rehash ckpt/$top ckpt"
while IFS='|' read -r name cmd; do
  case_run "checkpoint forged: $name" exact "" "$cmd"
done <<EOF
handle: 4 billion states|forge handle-states 'ckpt/$top/per_key#0/handle' 0xfffffff0 && $rh
handle: 2^32 states|forge handle-states 'ckpt/$top/per_key#0/handle' 0x10000 && $rh
handle: timer count off by one|forge handle-timers 'ckpt/$top/per_key#0/handle' 0x7fffffffffffffff && $rh
sink length beyond its file|$m "part('out')['data']['len'] += 7"
sink length short of its file|$m "part('out')['data']['len'] -= 7"
sink length a string|$m "part('out')['data']['len'] = str(part('out')['data']['len'])"
finished source|$m "part('gen')['finished'] = True"
finished window operator|$m "part('per_key')['finished'] = True"
finished as 1|$m "part('gen')['finished'] = 1"
watermark a string|$m "part('per_key')['wm'] = '0'"
watermark far ahead in a window operator|$m "part('per_key')['wm'] = 2**62"
watermark far ahead in the sink|$m "part('out')['wm'] = 2**62"
instance a string|$m "part('gen')['instance'] = '0'"
instance beyond the parallelism|$m "part('gen')['instance'] = 1"
a part removed|$m "m['parts'] = [p for p in m['parts'] if p['node'] != 'per_key']"
a part twice|$m "m['parts'].append(dict(part('gen')))"
parts an object|$m "m['parts'] = {}"
parallelism changed|$m "m['parallelism']['per_key'] = 2"
parallelism zero|$m "m['parallelism']['gen'] = 0"
max_parallelism huge|$m "m['max_parallelism'] = 2**40"
key groups shifted|$m "part('per_key')['key_groups'] = [1, 127]"
key groups a string|$m "part('per_key')['key_groups'] = '0-127'"
state dropped|$m "del part('per_key')['state']"
state path absolute|$m "part('per_key')['state'][0]['path'] = '/etc/passwd'"
state path with ..|$m "part('per_key')['state'][0]['path'] = '../' + part('per_key')['state'][0]['path']"
file size a float|$m "part('out')['file']['size'] = 1.5"
xxh3 not hex|$m "part('out')['file']['xxh3'] = 'z' * 32"
size not the sum|$m "m['size'] += 1"
id of another checkpoint|$m "m['id'] += 1"
format 2|$m "m['format'] = 2"
mode unknown|$m "m['mode'] = 'exactly-twice'"
job name a number|$m "m['job'] = 5"
data an array|$m "part('gen')['data'] = []"
metadata an array|$m "m.clear(); m['x'] = 1"
EOF

# Forged positions of the components themselves: caught when they restore
# (a refusal naming the field), or going back.
while IFS='|' read -r name needle cmd; do
  case_run "checkpoint forged: $name" any "$needle" "$cmd"
done <<EOF
generator past its end|generator|$m "part('gen')['data']['next'] = 10**12"
generator position negative|generator|$m "part('gen')['data']['next'] = -1"
generator ended, at the end of time|generator|$m "part('gen')['finished'] = True; part('gen')['wm'] = 2**63 - 1"
generator position a string|generator|$m "part('gen')['data']['next'] = '5'"
sink committed beyond its output|out.jsonl|$m "part('out')['data']['committed'] += 10**9"
sink committed negative|out.jsonl|$m "part('out')['data']['committed'] = -5"
EOF

# The savepoint, resumed with --from-savepoint: nothing to go back to, so
# refused naming the file, except a damaged metadata copy (the other one
# is read) or a deleted one.
sprel=${sp#$work/base/}
while read -r kind path; do
  [ -n "$path" ] || { echo "FAIL: no $kind file in the savepoint"; fail=1; continue; }
  for how in flip truncate empty delete; do
    want=any
    case $kind in metadata | metadata-copy) want=exact ;; esac
    needle=$(basename "$path")
    [ "$kind" = sst ] && needle=.sst
    case_run "savepoint $kind $how" $want "$needle" "damage $how '$sprel/$path'" \
      --from-savepoint "$sprel"
  done
done < <(kinds "$sp" .)
m="forge meta $sprel"
while IFS='|' read -r name needle cmd; do
  case_run "savepoint forged: $name" any "$needle" "$cmd" --from-savepoint "$sprel"
done <<EOF
handle: 4 billion states|handle|forge handle-states '$sprel/per_key#0/handle' 0xfffffff0 && forge rehash $sprel $sprel
sink length beyond its file|data.len|$m "part('out')['data']['len'] += 7"
finished source|finished|$m "part('gen')['finished'] = True"
watermark far ahead in the window operator|wm|$m "part('per_key')['wm'] = 2**62"
key groups shifted|key_groups|$m "part('per_key')['key_groups'] = [3, 127]"
parts an object|parts|$m "m['parts'] = {}"
kind a checkpoint's|checkpoint|$m "del m['kind']"
EOF

# The memory backend's table ("mem"), the one state file it has beside
# the handle: a base killed after three checkpoints, its newest damaged.
backend=memory
rm -rf "$work/base"
write_job "$work/mem" 20000
(cd "$work/mem" && exec "$RUNNEL" run job.yaml --quiet > log 2>&1) &
pid=$!
frozen=0
for _ in $(seq 1200); do
  kill -0 $pid 2> /dev/null || break
  if [ "$(complete "$work/mem/ckpt" | wc -l)" -ge 3 ]; then
    kill -STOP $pid
    cp -a "$work/mem" "$work/base"
    frozen=1
    break
  fi
  sleep 0.02
done
kill -9 $pid 2> /dev/null; wait $pid 2> /dev/null
check '[ $frozen -eq 1 ]' "memory backend: the run left three checkpoints"
if [ $frozen -eq 1 ]; then
  rm -rf "$work/base/ckpt"/*.inprogress
  write_job "$work/base"
  top=$(complete "$work/base/ckpt" | tail -1)
  for how in flip truncate empty delete; do
    case_run "memory checkpoint mem $how" exact "" "damage $how 'ckpt/$top/per_key#0/mem'"
  done
  case_run "memory checkpoint forged: mem with a record length beyond the file" exact "" \
    "forge mem-len 'ckpt/$top/per_key#0/mem' && forge rehash ckpt/$top ckpt"
  case_run "memory checkpoint forged: mem with a state index beyond the registry" exact "" \
    "forge mem-state 'ckpt/$top/per_key#0/mem' && forge rehash ckpt/$top ckpt"
fi

echo "$ncase cases"
exit $fail
