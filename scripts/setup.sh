#!/usr/bin/env bash
# The README's first command: installs what is missing, builds runnel into
# build/ (Release) and runs the quickstart job, then the same through Kafka
# on the embedded cluster (examples/quickstart/kafka.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
rn_install_deps
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
echo
echo "runnel: built build/runnel; running examples/quickstart/clicks.yaml"
echo
./build/runnel run examples/quickstart/clicks.yaml
echo
echo "runnel: the same through Kafka, on the embedded cluster: examples/quickstart/kafka.yaml"
echo
./build/runnel run examples/quickstart/kafka.yaml
