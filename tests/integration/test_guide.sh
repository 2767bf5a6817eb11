#!/usr/bin/env bash
# tests/integration/test_guide.sh: docs/guide-operator.md runs as written.
# Its code blocks that name a file (```c file=dedupe.c, ```yaml
# file=dedupe.yaml) are put together here in order, the plugin is compiled
# against the source tree's headers as the guide says, and the job runs on
# events whose first sightings and duplicates are known: the example of
# the guide's last section and a few more.
#
# Env: RUNNEL, RN_SRC, RN_TEST_TMP.
set -u
: "${RUNNEL:?}" "${RN_SRC:?}"
TMP=$(mktemp -d "${RN_TEST_TMP:-/tmp}/guide.XXXXXX")
cd "$TMP" || exit 1
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

awk '/^```[a-z]+ file=/ { split($2, a, "="); f = a[2]; next }
     /^```/ { f = ""; next }
     f != "" { print > f }' "$RN_SRC/docs/guide-operator.md"
check '[ -s dedupe.c ] && [ -s dedupe.yaml ]' "the guide's code blocks give dedupe.c and dedupe.yaml"
san=""
if [ -f "$(dirname "$RUNNEL")/CMakeCache.txt" ] && grep -q 'RN_SANITIZE:BOOL=ON' "$(dirname "$RUNNEL")/CMakeCache.txt"; then
  san="-fsanitize=address,undefined"
fi
cc -std=c11 -Wall -Wextra -Werror -fPIC -shared $san -I"$RN_SRC/include" dedupe.c -o libdedupe.so 2> cc.log
check '[ -f libdedupe.so ]' "dedupe.c compiles as the guide says, warnings as errors ($(head -c 300 cc.log))"
t0=1700000000000
ev() { printf '{"id":"%s","amount":%d,"ts":%.0f}\n' "$1" "$2" "$((t0 + $3 * 1000))"; }
{ ev a 1 0; ev a 2 10; ev b 3 20; ev a 4 100; ev c 5 100; ev c 6 159; ev c 7 230; } > events.jsonl
"$RUNNEL" run dedupe.yaml --quiet > run.log 2>&1
rc=$?
check '[ $rc -eq 0 ]' "the guide's job runs (rc $rc: $(head -c 300 run.log))"
want_first=$(printf '%s\n' "a 1" "b 3" "a 4" "c 5" "c 7" | sort)
got_first=$(sed -E 's/^\{"id":"([a-z])","amount":([0-9]+),.*/\1 \2/' first.jsonl 2>/dev/null | sort)
check '[ "$got_first" = "$want_first" ]' "first sightings pass, and again after a minute without the id ($(echo $got_first))"
want_dup=$(printf "%s\n" "a $((t0))" "c $((t0 + 100000))" | sort)
got_dup=$(sed -E 's/^\{"id":"([a-z])","seen_before":([0-9]+)\}$/\1 \2/' duplicates.jsonl 2>/dev/null | sort)
check '[ "$got_dup" = "$want_dup" ]' "repeats within a minute go to the side output with when the id was seen before ($(echo $got_dup))"

if [ $fail -eq 0 ] && [ -z "${RN_KEEP:-}" ]; then rm -rf "$TMP"; else echo "kept: $TMP"; fi
exit $fail
