#!/usr/bin/env bash
# The end of a job that takes checkpoints: the file sink commits at the
# end of its input while a checkpoint may still be storing the pending
# file it handed over. That checkpoint must find the file (it was removed
# under it, and "checkpoint N aborted: open '.out.jsonl.pending-...'"
# ended most runs), nothing is warned about, no pending file is left, and
# the output is the same every time. Short runs with checkpoints every
# 20 ms make a checkpoint in flight at the end likely.
set -uo pipefail
: "${RUNNEL:?}" "${RN_TEST_TMP:=/tmp}"
mkdir -p "$RN_TEST_TMP"
work=$(mktemp -d "$RN_TEST_TMP/ckend.XXXXXX")
[ -n "${RN_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

cat > "$work/job.yaml" <<YAML
name: ckend
checkpoints: {interval: 20ms, dir: ./ckpt}
state: {backend: rocksdb, dir: ./state, memory: 16MB}
sources:
  gen: {type: datagen, generator: sequence, events: 100000, keys: 20, event_time: ts}
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
for i in $(seq 12); do
  d=$work/run-$i
  mkdir -p "$d" && cp "$work/job.yaml" "$d/"
  (cd "$d" && "$RUNNEL" run job.yaml --quiet > /dev/null 2> err)
  rc=$?
  check '[ $rc -eq 0 ]' "run $i: exit 0"
  check '! grep -q "warn" "$d/err"' "run $i: nothing warned about$(grep -m1 warn "$d/err" | sed 's/^/: /')"
  check '[ -z "$(ls -A "$d" | grep pending)" ]' "run $i: no pending file left"
  check '[ "$(wc -l < "$d/out.jsonl")" -eq 20000 ] && cmp -s "$d/out.jsonl" "$work/run-1/out.jsonl"' \
    "run $i: 1000 windows of 20 keys, as the first run's"
done
exit $fail
