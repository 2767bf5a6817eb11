#!/usr/bin/env bash
# Installs the Debian packages runnel builds and tests with, when missing.
# Sourced by setup.sh and test.sh.
#
# Every tool a test runs that is not in every Debian system (essential or
# required: coreutils, util-linux, bsdutils, grep, sed, mawk, findutils,
# diffutils) is here:
# curl (the REST tests), default-jre-headless and maven (the Kafka tests'
# broker, tests/kafka/broker.sh, whose jars maven fetches), python3 (the
# torture suite's driver and the tests' checks). The tests use
# awk for arithmetic, not bc.
RN_PACKAGES="build-essential cmake ninja-build pkg-config libyaml-dev libjansson-dev
  libxxhash-dev libcsv-dev check librdkafka-dev librocksdb-dev libuv1-dev libzstd-dev
  libhttp-parser-dev curl python3 default-jre-headless maven"
RN_PACKAGES="$RN_PACKAGES clang libclang-rt-14-dev" # fuzz/run.sh: clang with libFuzzer

rn_install_deps() {
  local missing=()
  for p in $RN_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "runnel: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # The package lists may be stale on a fresh machine; retry once after an update.
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; then
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
}
