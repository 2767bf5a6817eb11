#!/usr/bin/env bash
# examples/fraud/gen_transactions.sh: writes the example's card
# transactions, deterministic, to stdout (transactions.jsonl is its output):
# {"tx_id": n, "card": "k01".."k30", "amount": EUR, "country": "FR", "ts": epoch ms}.
#
# Two hours of ordinary spending: each card pays every 9 to 23 minutes, in
# its home country, amounts near its own typical one. Three stories are
# mixed in, each once:
#   k05 a burst: six payments within 100 seconds at minute 40;
#   k12 a spike: 900 EUR at minute 70, its usual being about 40;
#   k20 two countries: a payment in US four minutes after one at home (FR).
set -euo pipefail
awk 'BEGIN {
  t0 = 1700000000000; min = 60000
  split("FR DE ES IT NL", home, " ")
  for (c = 1; c <= 30; c++) {
    every = 9 + (c * 5) % 15
    typical = 20 + (c * 11) % 50
    country = home[1 + c % 5]
    if (c == 20) country = "FR"
    for (m = c % every; m < 120; m += every) {
      amount = typical + ((m * c) % 17) - 8
      printf "%.0f %s %.2f %s\n", t0 + m * min + c * 1000, sprintf("k%02d", c), amount, country
    }
  }
  for (i = 0; i < 6; i++) printf "%.0f k05 %.2f %s\n", t0 + 40 * min + i * 20000, 30 + i, home[1]
  printf "%.0f k12 %.2f %s\n", t0 + 70 * min + 500, 900, home[3]
  printf "%.0f k20 %.2f %s\n", t0 + 50 * min, 45, "FR"
  printf "%.0f k20 %.2f %s\n", t0 + 54 * min, 60, "US"
}' | sort -n | awk '{ printf "{\"tx_id\":%d,\"card\":\"%s\",\"amount\":%s,\"country\":\"%s\",\"ts\":%s}\n", NR - 1, $2, $3, $4, $1 }'
