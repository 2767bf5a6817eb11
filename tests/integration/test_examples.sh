#!/usr/bin/env bash
# tests/integration/test_examples.sh: the examples run as their READMEs say,
# on the embedded cluster, and their output is checked.
#
# - wordcount: lines through an embedded Kafka topic, split into words by
#   a plugin in C, counted per word in one-minute windows; the counts equal
#   the ones worked out here with awk from the same lines (the same rules:
#   runs of letters, digits and apostrophes, lowercased).
#
# Env: RUNNEL, RN_SRC (the source tree), RN_EXAMPLES (build/examples, the
# examples' plugins), RN_TEST_TMP.
set -u
: "${RUNNEL:?}" "${RN_SRC:?}" "${RN_EXAMPLES:?}"
TMP=$(mktemp -d "${RN_TEST_TMP:-/tmp}/examples.XXXXXX")
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

# ---- wordcount ---------------------------------------------------------------------
(cd "$RN_SRC" && "$RUNNEL" run examples/wordcount/wordcount.yaml --quiet \
   --set operators.words.library="$RN_EXAMPLES/libwordcount.so" \
   --set sinks.file.path="$TMP/counts.jsonl" > "$TMP/wordcount.log" 2>&1)
rc=$?
awk '{
  ts = $0; sub(/^\{"ts":/, "", ts); sub(/,.*/, "", ts)
  line = $0; sub(/^[^"]*"ts":[0-9]+,"line":"/, "", line); sub(/"\}$/, "", line)
  start = sprintf("%.0f", int(ts / 60000) * 60000)
  line = tolower(line); gsub(/[^a-z0-9'\'']+/, " ", line)
  n = split(line, w, " ")
  for (i = 1; i <= n; i++) if (w[i] != "") c[w[i] " " start]++
} END { for (k in c) print k, c[k] }' "$RN_SRC/examples/wordcount/lines.jsonl" | sort > "$TMP/want"
sed -E 's/^\{"word":"([^"]*)","window_start":([0-9]+),"window_end":[0-9]+,"n":([0-9]+)\}$/\1 \2 \3/' \
  "$TMP/counts.jsonl" 2>/dev/null | sort > "$TMP/got"
check '[ $rc -eq 0 ]' "wordcount runs on the embedded cluster (rc $rc: $(head -c 300 "$TMP/wordcount.log"))"
check '[ -s "$TMP/want" ] && cmp -s "$TMP/want" "$TMP/got"' \
  "wordcount: every word of every minute counted right ($(wc -l < "$TMP/got") counts, $(wc -l < "$TMP/want") expected)"
check 'grep -q "^stream 1699999980000 " "$TMP/got"' "wordcount: words from inside punctuation are counted (stream)"

if [ $fail -eq 0 ] && [ -z "${RN_KEEP:-}" ]; then rm -rf "$TMP"; else echo "kept: $TMP"; fi
exit $fail
