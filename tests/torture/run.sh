#!/usr/bin/env bash
# The kill-loop torture suite (tests/torture/torture.py): runnel jobs with
# state far beyond state.memory, killed with SIGKILL at random moments and
# in bursts, stopped with SIGTERM and with savepoints, rescaled, and their
# output compared with a clean run's (lost, duplicated, wrong, crashes).
#
#   tests/torture/run.sh                           CI scale (ctest torture.kill)
#   RN_TORTURE_SCALE=long tests/torture/run.sh     the whole matrix, round after
#                                                  round for RN_TORTURE_MINUTES (10)
#   RN_TORTURE_SEED=N ...                          the same schedules again
#   RN_TORTURE_CASE=NAME:SEED ...                  one case, as a failure printed it
#
# RUNNEL defaults to build/runnel of this checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export RUNNEL=${RUNNEL:-$here/../../build/runnel}
[ -x "$RUNNEL" ] || { echo "torture: $RUNNEL is not built" >&2; exit 1; }
exec python3 "$here/torture.py"
