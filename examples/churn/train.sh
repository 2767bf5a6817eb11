#!/usr/bin/env bash
# examples/churn/train.sh: trains the churn model offline and writes it
# (model.txt) for the `churn` operator. Plain awk, no other dependency.
#
# Usage: examples/churn/train.sh EVENTS.jsonl LABELS > model.txt
#   (EVENTS from gen_events.sh, LABELS from gen_events.sh labels)
#
# Features per customer at the cutoff (day 56 of the data), the ones
# churn.c computes as events stream in:
#   dropped_24h         dropped calls in the 24 hours before
#   support_7d          support contacts in the 7 days before
#   data_change         (data used in the last 7 days - in the 7 before)
#                       / max(1, data used in the 7 before)
#   days_since_payment  days since the last bill was paid (60 if never)
# Customers c001..c200 whose number ends in 0-6 train the model, 7-9 are
# held out. Logistic regression, batch gradient descent on standardised
# features (a small L2 penalty), weights written back on the raw scale:
#   p = 1 / (1 + exp(-(bias + w . x)))
# The AUC on the held-out customers goes to stderr and into the file.
set -euo pipefail
events=${1:?events file} labels=${2:?labels file}
awk -v cutoff_day=56 '
FNR == NR { label[$1] = $2; next }
{
  # {"kind":"K","customer":"C","duration":D,"dropped":B,"mb":M,"amount":A,"ts":T}
  split($0, f, "\"")
  kind = f[4]; c = f[8]
  line = $0
  sub(/.*"dropped":/, "", line); dropped = (substr(line, 1, 4) == "true")
  mb = $0; sub(/.*"mb":/, "", mb); sub(/,.*/, "", mb)
  ts = $0; sub(/.*"ts":/, "", ts); sub(/}.*/, "", ts); ts += 0; mb += 0
  T = 1700000000000 + cutoff_day * 86400000
  if (ts >= T) next
  if (kind == "call" && dropped && ts > T - 86400000) drop[c]++
  if (kind == "support" && ts > T - 7 * 86400000) sup[c]++
  if (kind == "data" && ts > T - 7 * 86400000) last7[c] += mb
  else if (kind == "data" && ts > T - 14 * 86400000) prev7[c] += mb
  if (kind == "payment" && ts > lastpay[c]) lastpay[c] = ts
}
END {
  T = 1700000000000 + cutoff_day * 86400000
  n = 0
  for (c in label) {
    n++; id[n] = c; y[n] = label[c]
    x[n, 1] = drop[c] + 0
    x[n, 2] = sup[c] + 0
    p7 = prev7[c] + 0; x[n, 3] = (last7[c] - p7) / (p7 > 1 ? p7 : 1)
    x[n, 4] = (c in lastpay) ? (T - lastpay[c]) / 86400000 : 60
    num = substr(c, 2) + 0; train[n] = (num % 10) < 7
  }
  K = 4
  for (k = 1; k <= K; k++) {             # standardise on the training set
    s = 0; m = 0; for (i = 1; i <= n; i++) if (train[i]) { s += x[i, k]; m++ }
    mu[k] = s / m; v = 0
    for (i = 1; i <= n; i++) if (train[i]) v += (x[i, k] - mu[k]) ^ 2
    sd[k] = sqrt(v / m); if (sd[k] == 0) sd[k] = 1
  }
  b = 0; for (k = 1; k <= K; k++) w[k] = 0
  for (it = 0; it < 3000; it++) {
    gb = 0; for (k = 1; k <= K; k++) g[k] = 0
    for (i = 1; i <= n; i++) if (train[i]) {
      z = b; for (k = 1; k <= K; k++) z += w[k] * (x[i, k] - mu[k]) / sd[k]
      e = 1 / (1 + exp(-z)) - y[i]
      gb += e; for (k = 1; k <= K; k++) g[k] += e * (x[i, k] - mu[k]) / sd[k]
    }
    b -= 0.5 * gb / m
    for (k = 1; k <= K; k++) w[k] -= 0.5 * (g[k] / m + 0.001 * w[k])
  }
  # Back to the raw scale: z = b + sum w_k (x_k - mu_k) / sd_k.
  rb = b; for (k = 1; k <= K; k++) { rw[k] = w[k] / sd[k]; rb -= w[k] * mu[k] / sd[k] }
  # AUC on the held-out customers: the chance that a churner scores above
  # a loyal customer (ties count half).
  np = 0; nn = 0
  for (i = 1; i <= n; i++) if (!train[i]) {
    z = rb; for (k = 1; k <= K; k++) z += rw[k] * x[i, k]
    if (y[i]) pos[++np] = z; else neg[++nn] = z
  }
  a = 0; for (i = 1; i <= np; i++) for (j = 1; j <= nn; j++) a += (pos[i] > neg[j]) + 0.5 * (pos[i] == neg[j])
  auc = a / (np * nn)
  printf "held-out AUC %.3f (%d churners, %d loyal customers)\n", auc, np, nn > "/dev/stderr"
  printf "# churn model (examples/churn/train.sh): logistic regression on\n"
  printf "# dropped_24h support_7d data_change days_since_payment\n"
  printf "# held-out AUC %.3f (%d churners, %d loyal customers)\n", auc, np, nn
  printf "bias %.6f\ndropped_24h %.6f\nsupport_7d %.6f\ndata_change %.6f\ndays_since_payment %.6f\n", rb, rw[1], rw[2], rw[3], rw[4]
}' "$labels" "$events"
