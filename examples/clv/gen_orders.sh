#!/usr/bin/env bash
# examples/clv/gen_orders.sh: writes the example's orders, deterministic,
# to stdout (orders.jsonl is its output):
# {"order_id": n, "customer": "c01".."c20", "amount": EUR, "cost": EUR, "ts": epoch ms}.
#
# 90 days of orders from 20 customers. Customer i orders about every
# (2 + i % 7) days with its own basket size, so that frequencies, order
# values and margins differ; a few customers (c05, c10, c15, c20) stop
# after 30 days.
set -euo pipefail
awk 'BEGIN {
  t0 = 1700000000000; day = 86400000; n = 0
  for (d = 0; d < 90; d++) {
    for (c = 1; c <= 20; c++) {
      every = 2 + c % 7
      if ((d + c) % every != 0) continue
      if (c % 5 == 0 && d > 30) continue
      amount = 20 + (c * 7) % 60 + ((d * c) % 13)
      margin = 0.2 + (c % 4) * 0.1
      printf "{\"order_id\":%d,\"customer\":\"c%02d\",\"amount\":%.2f,\"cost\":%.2f,\"ts\":%.0f}\n", n++, c, amount, amount * (1 - margin), t0 + d * day + c * 60000
    }
  }
}'
