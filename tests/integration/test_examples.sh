#!/usr/bin/env bash
# tests/integration/test_examples.sh: the examples run as their READMEs say,
# on the embedded cluster, and their output is checked.
#
# - wordcount: lines through an embedded Kafka topic, split into words by
#   a plugin in C, counted per word in one-minute windows; the counts equal
#   the ones worked out here with awk from the same lines (the same rules:
#   runs of letters, digits and apostrophes, lowercased).
# - iot: readings through an embedded topic; the overheat plugin (keyed
#   state, an event-time timer) alerts once per episode over 90 C that
#   lasts 2 minutes, and session windows cut each machine's activity where
#   it went quiet; both equal what awk works out from the readings.
# - clv: orders through an embedded topic; the clv plugin's value after
#   each customer's last order equals APV x PF x CL x GM worked out here.
# - fraud: payments through an embedded topic; the fraud plugin's flags
#   (burst, spike, two countries) equal the rules applied with awk.
# - churn: train.sh trains the committed model (held-out AUC at least
#   0.8); the job's alerts name customers at most once, each over 0.8,
#   and find the generator's churners with precision and recall of at
#   least 0.7.
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

# ---- iot ---------------------------------------------------------------------------
(cd "$RN_SRC" && "$RUNNEL" run examples/iot/iot.yaml --quiet \
   --set operators.overheat.library="$RN_EXAMPLES/libiot.so" \
   --set sinks.alerts_file.path="$TMP/alerts.jsonl" \
   --set sinks.sessions_file.path="$TMP/sessions.jsonl" > "$TMP/iot.log" 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "iot runs on the embedded cluster (rc $rc: $(head -c 300 "$TMP/iot.log"))"
# The readings as "machine ts temp", in time order per machine.
sed -E 's/^\{"machine":"([^"]*)","temp":([0-9.]+),"rpm":[0-9]+,"ts":([0-9]+)\}$/\1 \3 \2/' \
  "$RN_SRC/examples/iot/readings.jsonl" | sort -k1,1 -k2,2n > "$TMP/readings"
# An alert per episode over 90 C that lasts 120 s: cooled at or after
# since + 120 s, or never cooled before the end.
awk '$1 != m { if (since != "") print m, since, since + 120000; m = $1; since = "" }
  $3 > 90 { if (since == "") since = $2; next }
  { if (since != "" && $2 >= since + 120000) print m, since, since + 120000; since = "" }
  END { if (since != "") print m, since, since + 120000 }' OFMT=%.0f "$TMP/readings" | sort > "$TMP/want-alerts"
sed -E 's/^\{"machine":"([^"]*)","over_since":([0-9]+),"alert_at":([0-9]+)\}$/\1 \2 \3/' \
  "$TMP/alerts.jsonl" 2>/dev/null | sort > "$TMP/got-alerts"
check '[ -s "$TMP/want-alerts" ] && cmp -s "$TMP/want-alerts" "$TMP/got-alerts"' \
  "iot: an alert for each episode over 90 C of 2 minutes or more, none for shorter ones ($(tr '\n' ';' < "$TMP/got-alerts"))"
# Sessions: readings less than 2 minutes apart; the window ends 2 minutes
# after the last.
awk '$1 != m || $2 >= last + 120000 { if (m != "") print m, start, last + 120000, n; m = $1; start = $2; n = 0 }
  { last = $2; n++ } END { print m, start, last + 120000, n }' OFMT=%.0f "$TMP/readings" | sort > "$TMP/want-sessions"
sed -E 's/^\{"machine":"([^"]*)","window_start":([0-9]+),"window_end":([0-9]+),"readings":([0-9]+),.*/\1 \2 \3 \4/' \
  "$TMP/sessions.jsonl" 2>/dev/null | sort > "$TMP/got-sessions"
check '[ "$(wc -l < "$TMP/want-sessions")" -gt 5 ] && cmp -s "$TMP/want-sessions" "$TMP/got-sessions"' \
  "iot: session windows of activity per machine, split where a machine went quiet ($(wc -l < "$TMP/got-sessions") sessions)"

# ---- clv ---------------------------------------------------------------------------
(cd "$RN_SRC" && "$RUNNEL" run examples/clv/clv.yaml --quiet \
   --set operators.clv.library="$RN_EXAMPLES/libclv.so" \
   --set sinks.clv_file.path="$TMP/clv.jsonl" > "$TMP/clv.log" 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "clv runs on the embedded cluster (rc $rc: $(head -c 300 "$TMP/clv.log"))"
orders=$(wc -l < "$RN_SRC/examples/clv/orders.jsonl")
check '[ "$(wc -l < "$TMP/clv.jsonl")" -eq "$orders" ]' "clv: a value after every order ($orders)"
# Each customer's value after its last order, worked out here:
# APV x PF x 104 x GM, PF in orders per week over at least a week.
sed -E 's/^\{"order_id":[0-9]+,"customer":"([^"]*)","amount":([0-9.]+),"cost":([0-9.]+),"ts":([0-9]+)\}$/\1 \2 \3 \4/' \
  "$RN_SRC/examples/clv/orders.jsonl" | awk '
  { n[$1]++; r[$1] += $2; c[$1] += $3; if (!($1 in f) || $4 < f[$1]) f[$1] = $4; if ($4 > l[$1]) l[$1] = $4 }
  END { for (k in n) { w = (l[k] - f[k]) / 604800000; if (w < 1) w = 1
    apv = r[k] / n[k]; pf = n[k] / w; gm = (r[k] - c[k]) / r[k]; printf "%s %d %.6f\n", k, n[k], apv * pf * 104 * gm } }' |
  sort > "$TMP/want-clv"
sed -E 's/^\{"customer":"([^"]*)","orders":([0-9]+),.*"clv":([0-9.e+-]+)\}$/\1 \2 \3/' "$TMP/clv.jsonl" |
  sort -k1,1 -k2,2n | awk '{ last[$1] = $0 } END { for (k in last) { split(last[k], a, " "); printf "%s %d %.6f\n", a[1], a[2], a[3] } }' |
  sort > "$TMP/got-clv"
check '[ "$(wc -l < "$TMP/want-clv")" -eq 20 ] && cmp -s "$TMP/want-clv" "$TMP/got-clv"' \
  "clv: each customer's lifetime value after its last order equals APV x PF x CL x GM worked out from the orders"
steps=$(sed -E 's/^\{"customer":"([^"]*)","orders":([0-9]+),.*/\1 \2/' "$TMP/clv.jsonl" | sort -k1,1 -k2,2n |
  awk '$1 != k { k = $1; i = 0 } { i++; if ($2 != i) bad++ } END { print bad + 0 }')
check '[ "$steps" -eq 0 ]' "clv: every customer's changelog counts its orders 1, 2, 3, ... ($steps out of step)"

# ---- fraud -------------------------------------------------------------------------
(cd "$RN_SRC" && "$RUNNEL" run examples/fraud/fraud.yaml --quiet \
   --set operators.flag.library="$RN_EXAMPLES/libfraud.so" \
   --set sinks.flags_file.path="$TMP/flags.jsonl" > "$TMP/fraud.log" 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "fraud runs on the embedded cluster (rc $rc: $(head -c 300 "$TMP/fraud.log"))"
# The three rules, per card in time order, as the example's README states them.
sed -E 's/^\{"tx_id":([0-9]+),"card":"([^"]*)","amount":([0-9.]+),"country":"([A-Z]+)","ts":([0-9]+)\}$/\2 \5 \1 \3 \4/' \
  "$RN_SRC/examples/fraud/transactions.jsonl" | sort -k1,1 -k2,2n | awk '
  $1 != card { card = $1; n = 0; sum = 0; k = 0; lts = ""; lc = "" }
  { k++; t[k] = $2; c = 0; for (i = 1; i <= k; i++) if (t[i] > $2 - 120000 && t[i] <= $2) c++
    if (c == 5) print $3, "burst"
    if (n >= 3 && $4 > 5 * sum / n) print $3, "spike"
    n++; sum += $4
    if (lts != "" && $2 - lts < 600000 && $5 != lc) print $3, "two_countries"
    lts = $2; lc = $5 }' OFMT=%.0f | sort > "$TMP/want-flags"
sed -E 's/^\{"tx_id":([0-9]+),"card":"[^"]*","reason":"([a-z_]+)",.*/\1 \2/' "$TMP/flags.jsonl" 2>/dev/null | sort > "$TMP/got-flags"
check '[ "$(cut -d" " -f2 "$TMP/want-flags" | sort -u | wc -l)" -eq 3 ] && cmp -s "$TMP/want-flags" "$TMP/got-flags"' \
  "fraud: bursts, spikes and two countries flagged as the rules say, nothing else ($(tr '\n' ';' < "$TMP/got-flags"))"

# ---- churn -------------------------------------------------------------------------
"$RN_SRC/examples/churn/gen_events.sh" > "$TMP/events.jsonl"
"$RN_SRC/examples/churn/gen_events.sh" labels > "$TMP/labels"
"$RN_SRC/examples/churn/train.sh" "$TMP/events.jsonl" "$TMP/labels" > "$TMP/model.txt" 2> "$TMP/train.log"
auc=$(sed -n 's/^held-out AUC \([0-9.]*\).*/\1/p' "$TMP/train.log")
check 'awk -v a="$auc" "BEGIN { exit !(a >= 0.8) }"' "churn: train.sh trains a model with a held-out AUC of at least 0.8 ($auc)"
check 'awk "NR == FNR { if (\$1 !~ /^#/) w[\$1] = \$2; next } \$1 !~ /^#/ { d = \$2 - w[\$1]; if (d > 1e-3 || d < -1e-3) bad++ } END { exit bad > 0 }" "$TMP/model.txt" "$RN_SRC/examples/churn/model.txt"' \
  "churn: the committed model.txt is what train.sh makes from the generated data"
(cd "$RN_SRC" && RUNNEL="$RUNNEL" examples/churn/run.sh --quiet \
   --set sources.file.path="$TMP/events.jsonl" \
   --set operators.score.library="$RN_EXAMPLES/libchurn.so" \
   --set sinks.alerts_file.path="$TMP/alerts.jsonl" > "$TMP/churn.log" 2>&1)
rc=$?
check '[ $rc -eq 0 ]' "churn runs on the embedded cluster (rc $rc: $(head -c 300 "$TMP/churn.log"))"
read -r alerts tp once above <<< "$(awk 'NR == FNR { l[$1] = $2; next }
  { split($0, a, "\""); c = a[4]; n++; if (l[c]) tp++; if (seen[c]++) twice++
    p = $0; sub(/.*"p":/, "", p); sub(/,.*/, "", p); if (p + 0 <= 0.8) low++ }
  END { print n + 0, tp + 0, (twice + 0 == 0), (low + 0 == 0) }' "$TMP/labels" "$TMP/alerts.jsonl" 2>/dev/null)"
churners=$(awk '{ n += $2 } END { print n }' "$TMP/labels")
check '[ "${once:-0}" = 1 ] && [ "${above:-0}" = 1 ] && [ "${alerts:-0}" -gt 0 ]' \
  "churn: one alert per customer at most, each with a churn probability over 0.8 (${alerts:-0} alerts)"
check 'awk -v a="${alerts:-0}" -v t="${tp:-0}" -v c="$churners" "BEGIN { exit !(a > 0 && t / a >= 0.7 && t / c >= 0.7) }"' \
  "churn: the alerts find churners: precision $(awk -v a="${alerts:-0}" -v t="${tp:-0}" 'BEGIN { printf "%.2f", a ? t / a : 0 }'), recall $(awk -v c="$churners" -v t="${tp:-0}" 'BEGIN { printf "%.2f", t / c }') (at least 0.7 each)"

if [ $fail -eq 0 ] && [ -z "${RN_KEEP:-}" ]; then rm -rf "$TMP"; else echo "kept: $TMP"; fi
exit $fail
