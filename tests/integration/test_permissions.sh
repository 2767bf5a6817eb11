#!/usr/bin/env bash
# tests/integration/test_permissions.sh: the directories a job writes and
# later trusts (checkpoints, savepoints, state) are checked along their
# whole way from /, as careful tools do (docs/checkpoints.md "Storage
# layout"): a directory on the way that others can write without the
# sticky bit, or that another user owns, is refused with a message naming
# it; a sticky one (as /tmp) is fine. Plugins: test_plugin.sh.
#
# Cases that need root (chown to another user) are skipped with a message
# when the test does not run as root.
#
# Env: RUNNEL, RN_TEST_TMP.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/permissions.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'chmod -R u+rwx "$work" 2>/dev/null; rm -rf "$work"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

default_state='state: {backend: rocksdb, dir: ./state, memory: 16MB}'
write_job() { # FILE CHECKPOINT-DIR [STATE-LINE]
  local state=${3:-$default_state}
  cat > "$1" <<YAML
name: perms
parallelism: 1
checkpoints: {interval: 200ms, dir: $2}
$state
sources:
  gen: {type: datagen, generator: sequence, events: 2000, keys: 5, event_time: ts}
operators:
  w:
    type: window_aggregate
    inputs: [gen]
    key: [key]
    window: {type: tumbling, size: 1s}
    aggregates: {n: count()}
sinks:
  out: {type: file, inputs: [w], path: ./out.jsonl}
YAML
}
run() { # DIR: runs job.yaml there; rc in $rc, stderr in DIR/log
  (cd "$1" && "$RUNNEL" run job.yaml --quiet > log 2>&1)
  rc=$?
}

# A checkpoints directory under a parent others can write, no sticky bit.
d=$work/ww
mkdir -p "$d/open"
chmod 0777 "$d/open"
write_job "$d/job.yaml" ./open/ckpt
run "$d"
check '[ $rc -eq 2 ] && grep -q "checkpoint directory .*/open.* on its way can be written by other users (mode 0777, no sticky bit)" "$d/log" && [ ! -s "$d/out.jsonl" ]' \
  "a checkpoints directory under a world-writable parent is refused (rc $rc: $(head -c 250 "$d/log"))"

# The same parent with the sticky bit, as /tmp: fine.
chmod 1777 "$d/open"
run "$d"
check '[ $rc -eq 0 ] && [ -s "$d/out.jsonl" ]' "under a sticky world-writable parent it runs (rc $rc: $(head -c 200 "$d/log"))"

# A savepoints root under a world-writable parent.
d=$work/sp
mkdir -p "$d/open"
chmod 0777 "$d/open"
write_job "$d/job.yaml" ./ckpt
sed -i "s#dir: ./ckpt}#dir: ./ckpt, savepoints: ./open/sp}#" "$d/job.yaml"
run "$d"
check '[ $rc -eq 2 ] && grep -q "savepoints directory .*/open.* on its way" "$d/log"' \
  "a savepoints directory under a world-writable parent is refused (rc $rc: $(head -c 250 "$d/log"))"
# A savepoints root in the checkpoint store's own files.
write_job "$d/job.yaml" ./ckpt
sed -i "s#dir: ./ckpt}#dir: ./ckpt, savepoints: ./ckpt/shared}#" "$d/job.yaml"
run "$d"
check '[ $rc -eq 2 ] && grep -q "lies in the checkpoint store" "$d/log"' \
  "a savepoints directory inside the store (shared/) is refused (rc $rc: $(head -c 250 "$d/log"))"

# The state directory under a world-writable parent.
d=$work/state
mkdir -p "$d/open"
chmod 0777 "$d/open"
write_job "$d/job.yaml" ./ckpt "state: {backend: rocksdb, dir: ./open/state, memory: 16MB}"
run "$d"
check '[ $rc -eq 2 ] && grep -q "state directory .*/open.* on its way can be written" "$d/log"' \
  "a state directory under a world-writable parent is refused (rc $rc: $(head -c 250 "$d/log"))"

# The default state root ($TMPDIR/runnel-<uid>/state) made beforehand by
# another user: that user could swap the state under the job.
if [ "$(id -u)" -eq 0 ] && id nobody > /dev/null 2>&1; then
  d=$work/default
  mkdir -p "$d/tmp/runnel-$(id -u)"
  chmod 1777 "$d/tmp"
  chown nobody "$d/tmp/runnel-$(id -u)"
  write_job "$d/job.yaml" ./ckpt "state: {backend: rocksdb, memory: 16MB}"
  (cd "$d" && TMPDIR="$d/tmp" "$RUNNEL" run job.yaml --quiet > log 2>&1)
  rc=$?
  check '[ $rc -eq 2 ] && grep -q "runnel-$(id -u).* belongs to another user" "$d/log"' \
    "a default state root made by another user is refused (rc $rc: $(head -c 250 "$d/log"))"
  chown "$(id -u)" "$d/tmp/runnel-$(id -u)"
  chmod 0700 "$d/tmp/runnel-$(id -u)"
  (cd "$d" && TMPDIR="$d/tmp" "$RUNNEL" run job.yaml --quiet > log 2>&1)
  rc=$?
  check '[ $rc -eq 0 ]' "the same root, the user's own, runs (rc $rc: $(head -c 200 "$d/log"))"
  # A checkpoints directory whose parent another user owns.
  d=$work/foreign
  mkdir -p "$d/theirs"
  chown nobody "$d/theirs"
  write_job "$d/job.yaml" ./theirs/ckpt
  run "$d"
  check '[ $rc -eq 2 ] && grep -q "theirs.* belongs to another user" "$d/log"' \
    "a checkpoints directory in another user's directory is refused (rc $rc: $(head -c 250 "$d/log"))"
else
  echo "skipped: a state root and a checkpoints parent owned by another user (needs root and the user nobody)"
fi
exit $fail
