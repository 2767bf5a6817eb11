#!/usr/bin/env bash
# examples/churn/gen_events.sh: writes the churn example's data,
# deterministic (a fixed-seed generator), to stdout: one stream of
# customer events, JSON lines, in time order:
#   {"kind":"call","customer":"c001","duration":s,"dropped":bool,"mb":0,"amount":0,"ts":ms}
#   {"kind":"data",...,"mb":megabytes}   one a day
#   {"kind":"support",...}               a contact with support
#   {"kind":"payment",...,"amount":EUR}  the monthly bill paid
# and, with `labels` as its first argument, "customer churner" lines
# instead (1: the customer is about to leave).
#
# 200 customers over 60 days. About a third are churners: from a day
# between 25 and 40 their service gets worse (more dropped calls), they
# call support more, use less data and, for most, skip the second bill.
# Not every churner shows every sign, and some loyal customers show some
# (a bad coverage area, a late payer), so that the model has work to do.
set -euo pipefail
mode=${1:-events}
awk -v mode="$mode" '
function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
function ev(kind, c, t, dur, drop, mb, amt) {
  printf "%.0f {\"kind\":\"%s\",\"customer\":\"c%03d\",\"duration\":%d,\"dropped\":%s,\"mb\":%d,\"amount\":%.2f,\"ts\":%.0f}\n", t, kind, c, dur, drop ? "true" : "false", mb, amt, t
}
BEGIN {
  seed = 42; t0 = 1700000000000; day = 86400000
  for (c = 1; c <= 200; c++) {
    churn[c] = rnd() < 0.33
    start[c] = 25 + int(rnd() * 16)
    sign_drop[c] = churn[c] ? rnd() < 0.7 : rnd() < 0.1
    sign_support[c] = churn[c] ? rnd() < 0.7 : rnd() < 0.1
    sign_data[c] = churn[c] ? rnd() < 0.6 : rnd() < 0.1
    sign_pay[c] = churn[c] ? rnd() < 0.6 : rnd() < 0.08
    base_mb[c] = 100 + int(rnd() * 300)
    payday[c] = int(rnd() * 10)
    if (mode == "labels") printf "c%03d %d\n", c, churn[c]
  }
  if (mode == "labels") exit
  for (d = 0; d < 60; d++) {
    for (c = 1; c <= 200; c++) {
      late = d >= start[c]
      calls = 1 + int(rnd() * 4)
      for (i = 0; i < calls; i++) {
        p = (late && sign_drop[c]) ? 0.3 : 0.04
        ev("call", c, t0 + d * day + int(rnd() * day), 30 + int(rnd() * 600), rnd() < p, 0, 0)
      }
      mb = base_mb[c] * (0.8 + 0.4 * rnd())
      if (late && sign_data[c]) mb = mb * (1 - (d - start[c]) / 30) ; if (mb < 0) mb = 0
      ev("data", c, t0 + d * day + 23 * 3600000 + c * 1000, 0, 0, int(mb), 0)
      ps = (late && sign_support[c]) ? 0.2 : 0.015
      if (rnd() < ps) ev("support", c, t0 + d * day + int(rnd() * day), 0, 0, 0, 0)
      if (d % 30 == payday[c] && !(d >= 30 && sign_pay[c] && late))
        ev("payment", c, t0 + d * day + 12 * 3600000, 0, 0, 0, 30 + c % 40)
    }
  }
}' | { if [ "$mode" = labels ]; then cat; else sort -n -s -k1,1 | cut -d" " -f2-; fi; }
