#!/usr/bin/env bash
# examples/churn/run.sh: the churn example with one command, from the top
# of the source tree: writes the events (run/churn/events.jsonl) and runs
# examples/churn/churn.yaml on the embedded cluster. Arguments go to
# `runnel run` (--set ... for a real broker, README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p run/churn
[ -s run/churn/events.jsonl ] || examples/churn/gen_events.sh > run/churn/events.jsonl
exec "${RUNNEL:-build/runnel}" run examples/churn/churn.yaml "$@"
