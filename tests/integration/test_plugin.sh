#!/usr/bin/env bash
# tests/integration/test_plugin.sh: operators in C from shared libraries
# (type: plugin; include/runnel/plugin.h, docs/plugins.md), with the test
# plugin tests/plugins/test_ops.c.
#
# - threshold, parallelism 2, keyed: every record reaches the main or the
#   side output as the operator decided, with the config's threshold; each
#   instance's finish() emits how many records it saw, and the counts add
#   up to the input (per-instance data from open to finish).
# - doubler, no plan: the main output has the input's schema, a copy of
#   the record with one field changed.
# - refusals, each with the job file's position and a message that says
#   what to do: a missing library, another ABI, no init function, a symbol
#   no runnel has (RTLD_NOW), an operator the library lacks, a library
#   others can write, a config the operator's plan refuses; a process()
#   failure stops the job with the operator's message.
#
# Env: RUNNEL, RN_PLUGINS (the built test plugins), RN_TEST_TMP.
set -u
: "${RUNNEL:?}" "${RN_PLUGINS:?}"
TMP=$(mktemp -d "${RN_TEST_TMP:-/tmp}/plugin.XXXXXX")
cd "$TMP" || exit 1
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

awk 'BEGIN { for (i = 0; i < 1000; i++)
  printf "{\"id\":%d,\"key\":\"k%d\",\"value\":%d,\"ts\":%.0f}\n", i, i % 7, i % 100, 1700000000000 + i }' > in.jsonl
job() { # FILE OPERATOR CONFIG [LIBRARY] [EXTRA-SOURCE-PATH]
  cat > "$1" <<YAML
name: plugin-test
parallelism: 2
sources:
  src:
    type: file
    path: ${5:-in.jsonl}
    schema: {id: int, key: string, value: int, ts: timestamp}
    event_time: ts
operators:
  op:
    type: plugin
    inputs: [src]
    library: ${4:-$RN_PLUGINS/libtest_ops.so}
    operator: $2
    key: [key]
    config: $3
sinks:
  out: {type: file, inputs: [op], path: ./$1.out.jsonl}
YAML
  if [ "$2" = threshold ]; then
    echo "  small: {type: file, inputs: [op.small], path: ./$1.small.jsonl}" >> "$1"
  fi
}

# ---- threshold --------------------------------------------------------------------
job thr.yaml threshold "{threshold: 60}"
"$RUNNEL" run thr.yaml --quiet > thr.log 2>&1
rc=$?
check '[ $rc -eq 0 ]' "a job with a plugin operator runs (rc $rc: $(head -c 300 thr.log))"
big=$(grep -c '"big":true' thr.yaml.out.jsonl 2>/dev/null)
want_big=$(awk -F'"value":' '{ split($2, a, ","); if (a[1] + 0 >= 60) n++ } END { print n }' in.jsonl)
check '[ "$big" = "$want_big" ] && [ "$big" -gt 0 ]' "records >= the threshold reach the main output ($big, want $want_big)"
check '! grep "\"big\":true" thr.yaml.out.jsonl | grep -qv "\"key\":\"k[0-6]\",\"value\":\\(6[0-9]\\|[7-9][0-9]\\),\"big\":true"' \
  "the main output has the declared fields key, value, big, in that order"
small=$(wc -l < thr.yaml.small.jsonl 2>/dev/null || echo 0)
check '[ "$small" -eq $((1000 - want_big)) ] && head -1 thr.yaml.small.jsonl | grep -q "^{\"id\":[0-9]*,\"value\":[0-9]*}$"' \
  "smaller ones reach the side output op.small as {id, value} ($small)"
counts=$(grep '"#count"' thr.yaml.out.jsonl | grep -o '"value":[0-9]*' | cut -d: -f2 | sort -n | tr '\n' ' ')
total=$(echo $counts | tr ' ' '+' | bc 2>/dev/null)
check '[ "$(echo $counts | wc -w)" -eq 2 ] && [ "$total" = 1000 ]' \
  "each of the 2 instances emits its count at the end, together the input ($counts)"

# ---- doubler: the input's schema ---------------------------------------------------
job dbl.yaml doubler "{}"
"$RUNNEL" run dbl.yaml --quiet > dbl.log 2>&1
rc=$?
want=$(awk -F'"value":' '{ split($2, a, ","); sub("\"value\":" a[1] ",", "\"value\":" a[1] * 2 ","); print }' in.jsonl | sort)
check '[ $rc -eq 0 ] && [ "$(sort dbl.yaml.out.jsonl)" = "$want" ]' \
  "without a plan the output is the input's schema: each record copied, value doubled (rc $rc)"

# ---- refusals -----------------------------------------------------------------------
refused() { # NAME PATTERN YAML-ARGS...: the job is refused, the message matches
  local name=$1 pat=$2
  shift 2
  job "$name.yaml" "$@"
  "$RUNNEL" run "$name.yaml" --quiet > "$name.log" 2>&1
  local rc=$?
  check '[ $rc -ne 0 ] && grep -q -- "$pat" "$name.log" && [ ! -s "$name.yaml.out.jsonl" ]' \
    "$name: refused with \"$(head -1 "$name.log" | cut -c1-200)\""
}
refused missing "missing.yaml:[0-9]*:[0-9]*: .*nope.so: No such file" threshold "{threshold: 1}" "$RN_PLUGINS/nope.so"
refused abi "abi.yaml:[0-9]*:[0-9]*: .*built against runnel ABI 999, this runnel has ABI [0-9]*: rebuild" \
  threshold "{threshold: 1}" "$RN_PLUGINS/libtest_ops_abi.so"
refused noinit "noinit.yaml:[0-9]*:[0-9]*: .*has no function runnel_plugin_init" \
  threshold "{threshold: 1}" "$RN_PLUGINS/libtest_ops_noinit.so"
refused symbol "symbol.yaml:[0-9]*:[0-9]*: .*cannot be loaded: .*undefined symbol: rn_pf_not_in_any_runnel" \
  threshold "{threshold: 1}" "$RN_PLUGINS/libtest_ops_missing.so"
refused noop "noop.yaml:[0-9]*:[0-9]*: .*has no operator 'nosuch' (it registers: threshold, doubler)" nosuch "{}"
refused config "config.yaml:[0-9]*:[0-9]*: .*threshold 'ten' is not an integer" threshold "{threshold: ten}"
mkdir -p shared
cp "$RN_PLUGINS/libtest_ops.so" shared/
chmod 0775 shared/libtest_ops.so
refused writable "writable.yaml:[0-9]*:[0-9]*: .*writable by others than its owner" \
  threshold "{threshold: 1}" "$TMP/shared/libtest_ops.so"
chmod 0755 shared/libtest_ops.so
chmod 0777 shared
refused writable_dir "which others than its owner can write" threshold "{threshold: 1}" "$TMP/shared/libtest_ops.so"
chmod 0755 shared

# ---- a failure in process() ---------------------------------------------------------
{ head -500 in.jsonl; echo '{"id":5000,"key":"k1","value":-1,"ts":1700000001000}'; } > bad.jsonl
job bad.yaml threshold "{threshold: 60}" "" bad.jsonl
"$RUNNEL" run bad.yaml --quiet > bad.log 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "operator .op. (instance [01]): record 5000 has value -1" bad.log' \
  "a process() failure stops the job with the operator's message (rc $rc: $(head -1 bad.log | cut -c1-200))"
check '! grep -q "AddressSanitizer\|LeakSanitizer\|runtime error" *.log' "no sanitizer report"

if [ $fail -eq 0 ]; then rm -rf "$TMP"; else echo "kept: $TMP"; fi
exit $fail
