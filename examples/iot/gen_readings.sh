#!/usr/bin/env bash
# examples/iot/gen_readings.sh: writes the example's machine readings,
# deterministic, to stdout (readings.jsonl is its output):
# {"machine": "m1".."m5", "temp": degrees C, "rpm": int, "ts": epoch ms}.
#
# Five machines report every 10 s for 40 minutes, each with its own story:
#   m1 runs warm and crosses 90 C for 60 s at minute 6: too short for an alert;
#   m2 overheats from minute 12 for 5 minutes: one alert;
#   m3 overheats twice (minutes 8-12 and 25-26.5): one alert, then a short one;
#   m4 stops reporting from minute 15 to 22 (two sessions of activity);
#   m5 stays cool and idles (no readings) every tenth minute for 3 minutes.
# Temperatures carry a small deterministic wobble, so that no two readings
# are alike.
set -euo pipefail
awk 'BEGIN {
  t0 = 1700000000000
  for (s = 0; s < 2400; s += 10) {
    for (m = 1; m <= 5; m++) {
      min = s / 60
      temp = 70 + 5 * sin(s / 97 + m) + m
      if (m == 1 && min >= 6 && min < 7) temp = 92 + (s % 3)
      if (m == 2 && min >= 12 && min < 17) temp = 95 + (s % 5)
      if (m == 3 && ((min >= 8 && min < 12) || (min >= 25 && min < 26.5))) temp = 93 + (s % 4)
      if (m == 4 && min >= 15 && min < 22) continue
      if (m == 5 && (int(min) % 10) >= 7) continue
      printf "{\"machine\":\"m%d\",\"temp\":%.1f,\"rpm\":%d,\"ts\":%.0f}\n", m, temp, 1000 + (s * m) % 500, t0 + s * 1000
    }
  }
}'
