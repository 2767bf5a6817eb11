#!/usr/bin/env bash
# tests/kafka/broker.sh: a real, single-node Apache Kafka broker for tests.
#
#   broker.sh start                    start it; prints 127.0.0.1:PORT as the last line
#   broker.sh stop                     stop it and remove its data (fine when none runs)
#   broker.sh topic NAME PARTITIONS    create a topic (replication factor 1)
#   broker.sh partitions NAME N        give an existing topic N partitions (more only)
#   broker.sh restart                  stop it (SIGTERM) and start it again on the
#                                      same ports and data (a broker restart in a test)
#
# The broker is Apache Kafka in KRaft mode, one process that is both broker and
# controller, listening on 127.0.0.1 only. Its jars come from Maven Central
# (org.apache.kafka:kafka_2.13 and kafka-tools, 3.9.x): a throwaway pom and
# `mvn dependency:copy-dependencies` fetch them once into a cache directory;
# later starts reuse it. 3.9.x because it still serves every old protocol
# version that Debian's librdkafka 2.0.2 needs for balanced consumer groups
# (JoinGroup v0 feature probe), which 4.0.0 removed (KIP-896); tests/kafka/kafka_check.c
# checks that.
#
# Progress goes to stderr; stdout carries only the bootstrap address, so that
# callers can write addr=$(broker.sh start | tail -n 1).
#
# Env:
#   RN_KAFKA_DIR      the broker's directory: pid file, ports, server.properties,
#                     data/ and broker.log (default ${TMPDIR:-/tmp}/runnel-kafka).
#                     stop and topic find the running broker through it.
#   RN_KAFKA_PORT     the client (PLAINTEXT) port; default: a free port.
#   RN_KAFKA_CONTROLLER_PORT  the KRaft controller port; default: a free port.
#   RN_KAFKA_VERSION  default 3.9.1.
#   RN_KAFKA_CACHE    the jar cache
#                     (default ${XDG_CACHE_HOME:-$HOME/.cache}/runnel/kafka-VERSION).
#   RN_KAFKA_HEAP     the JVM heap options (default -Xms512m -Xmx512m).
#   RN_KAFKA_START_TIMEOUT  seconds to wait for the broker to serve (default 300:
#                     a deadline for a hung start only; a JVM on a loaded
#                     machine can take a minute).
#   RN_KAFKA_WATCH_PID  if set, a watchdog stops the broker when that process
#                     ends: a test killed by SIGKILL (a ctest timeout) runs no
#                     trap, and the broker, no longer its descendant, would
#                     outlive it.
set -euo pipefail

SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
VERSION=${RN_KAFKA_VERSION:-3.9.1}
DIR=${RN_KAFKA_DIR:-${TMPDIR:-/tmp}/runnel-kafka}
CACHE=${RN_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runnel/kafka-$VERSION}
HEAP=${RN_KAFKA_HEAP:-"-Xms512m -Xmx512m"}
START_TIMEOUT=${RN_KAFKA_START_TIMEOUT:-300}
STOP_TIMEOUT=30
# A bound on each tool run (TopicCommand, StorageTool): one whose caller was
# killed must not linger, e.g. retrying a broker that is gone.
TOOL_TIMEOUT=120
# The logging binding of 3.9's own tarball (libs/): without one the broker
# runs silently and a failure leaves nothing to read.
SLF4J_VERSION=1.7.36
RELOAD4J_VERSION=1.2.25
DEPENDENCY_PLUGIN_VERSION=3.6.1

# stop and topic match the broker's command line against this path.
[ -d "$DIR" ] && DIR=$(cd "$DIR" && pwd -P)

say() { echo "broker.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# ---- tools --------------------------------------------------------------

# Installs java and mvn with apt when missing, as scripts/deps.sh does for
# the build's packages (sudo only when not root).
ensure_tools() {
    local missing=()
    command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # The package lists may be stale on a fresh machine; retry once after an update.
    if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; then
        $sudo apt-get update -q >&2
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
    fi
}

write_pom() { # FILE
    cat >"$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by runnel's tests/kafka/broker.sh only to fetch Kafka's jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>runnel.tests</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>$RELOAD4J_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>$DEPENDENCY_PLUGIN_VERSION</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
}

# Fetches the jars into $CACHE/lib once. A lock serialises two first runs on
# one machine, and the jars land in a temporary directory renamed into place
# only when complete, so an interrupted fetch never leaves a half cache.
ensure_jars() {
    [ -f "$CACHE/complete" ] && return 0
    mkdir -p "$(dirname "$CACHE")"
    exec 9>"$CACHE.lock"
    flock -w 900 9 || die "timed out waiting for another fetch ($CACHE.lock)"
    if [ ! -f "$CACHE/complete" ]; then
        say "fetching Kafka $VERSION jars from Maven Central into $CACHE (once)"
        local tmp
        tmp=$(mktemp -d "$CACHE.tmp.XXXXXX")
        # An interrupted fetch leaves nothing behind either. (Expanded now:
        # tmp is local to this function.)
        # shellcheck disable=SC2064
        trap "rm -rf '$tmp'" EXIT
        write_pom "$tmp/pom.xml"
        # Not -q: a failed download is logged as a warning before the error
        # it causes, and -q would hide it. The plugin is named by its full
        # coordinates, so that a failed fetch says which artifact and why,
        # not "No plugin found for prefix 'dependency'" (what a prefix
        # lookup says when it could not fetch the plugin index).
        if ! (cd "$tmp" && mvn -B -ntp -Dstyle.color=never \
            "org.apache.maven.plugins:maven-dependency-plugin:$DEPENDENCY_PLUGIN_VERSION:copy-dependencies" \
            -DoutputDirectory=lib -DincludeScope=runtime >mvn.log 2>&1); then
            cp "$tmp/mvn.log" "$CACHE.mvn.log" 2>/dev/null || true
            say "mvn failed ($CACHE.mvn.log has its whole log):"
            # Its warnings and errors without Maven's advice on how to
            # rerun it; the end of the log when there are none.
            grep -E '^\[(WARNING|ERROR)\] ' "$tmp/mvn.log" |
                grep -viE '^\[ERROR\] *(to see the full|re-run maven|for more information|\[help [0-9]+\]|$)' |
                head -n 40 >&2 || tail -n 20 "$tmp/mvn.log" >&2
            rm -rf "$tmp"
            die "mvn could not fetch org.apache.kafka:kafka_2.13:$VERSION (see above)"
        fi
        ls "$tmp"/lib/kafka_2.13-"$VERSION".jar >/dev/null 2>&1 ||
            die "mvn ran but $tmp/lib has no kafka_2.13-$VERSION.jar"
        date -u +%FT%TZ >"$tmp/complete"
        rm -rf "$CACHE"
        mv -T "$tmp" "$CACHE"
        trap - EXIT
    fi
    exec 9>&-
}

# ---- the broker's directory -----------------------------------------------

# Prints the pid of the broker that runs from $DIR, or fails. The pid file
# alone could name a recycled pid, so the process's command line must also
# name this directory's server.properties.
broker_pid() {
    local pid
    [ -f "$DIR/pid" ] || return 1
    pid=$(cat "$DIR/pid")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $DIR/server.properties" || return 1
    # A zombie (killed, not yet reaped by its new parent) no longer serves.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
    echo "$pid"
}

# Prints the local TCP ports in use (any state), from /proc: no ss or
# netstat needed.
used_ports() {
    local f sl local_addr
    for f in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$f" ] || continue
        while read -r sl local_addr _; do
            [ "$sl" = "sl" ] && continue
            echo $((16#${local_addr##*:}))
        done <"$f"
    done
}

# Prints a port that no socket uses now, below the ephemeral range
# (32768-60999 on Linux) so that outgoing connections do not take it
# meanwhile, and random so that two runs rarely pick the same one; a
# collision that still happens makes the broker fail to bind, and start
# then tries again with other ports.
free_port() { # [PORT_TO_AVOID]
    local used port
    used=" $(used_ports | tr '\n' ' ') ${1:-} "
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 12000))
        case "$used" in
        *" $port "*) continue ;;
        esac
        echo "$port"
        return 0
    done
    die "found no free port"
}

classpath() { echo "$CACHE/lib/*"; }

write_config() { # PORT CONTROLLER_PORT
    local port=$1 cport=$2
    cat >"$DIR/server.properties" <<EOF
# Written by tests/kafka/broker.sh: one node, broker and controller (KRaft),
# on loopback, for tests.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data

# One node: the internal topics can have one replica only. Without the two
# transaction.state.log lines InitProducerId fails and no transactional
# producer can start.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# The first consumer of a group is assigned its partitions at once instead
# of after the default 3 s wait for more members.
group.initial.rebalance.delay.ms=0

# Few threads: the broker shares 2 cores with the tests (defaults are
# 3 network, 8 I/O, 10 background, 2 recovery threads).
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1

# The internal topics are created on first use of a group or transactional
# id, with 50 partitions each by default: on one node that is 100 logs and
# leader elections in the first test that commits an offset or a
# transaction. One partition each serves a test just as well.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1

# A test that kills a producer mid-transaction waits, for the broker to
# abort it, the producer's transaction.timeout.ms plus up to this interval
# (default 10 s); read_committed consumers stall behind the open
# transaction until then.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
# The largest transaction.timeout.ms a producer may ask for; kept at the
# default (15 min) on purpose: an engine sets its transaction timeout above
# its checkpoint interval, and a lower cap here would make InitProducerId
# fail with INVALID_TRANSACTION_TIMEOUT in tests that production accepts.
transaction.max.timeout.ms=900000
# Lets tests of consumer failover use session timeouts down to 1 s
# (default minimum 6 s).
group.min.session.timeout.ms=1000

# Data logs are never fsynced by Kafka by default (the page cache and
# replication give durability); that default is what tests want: no
# flushes slowing produce on a disk shared with the tests, and the data is
# thrown away by stop. Written out so nobody turns flushing on by accident.
# (KRaft's metadata log still fsyncs each batch: Raft needs it.)
log.flush.interval.messages=9223372036854775807
# A topic must be created (broker.sh topic) with the partitions a test means:
# a misspelled name fails at once instead of auto-creating an empty topic
# that a consumer then waits on until its timeout.
auto.create.topics.enable=false
num.partitions=1
EOF
    # The broker's log4j configuration: everything at INFO into broker.log,
    # the file that start prints the tail of when the broker fails.
    cat >"$DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$DIR/broker.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    # The command-line tools (StorageTool, TopicCommand): warnings to stderr,
    # as Kafka's own tools-log4j.properties.
    cat >"$DIR/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    echo "$port" >"$DIR/port"
    echo "$cport" >"$DIR/controller.port"
    # topic runs the tools of the broker's own version, whatever its env says.
    echo "$CACHE" >"$DIR/cache"
}

run_tool() { # MAIN_CLASS ARGS...
    timeout -k 5 "$TOOL_TIMEOUT" java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j.configuration="file:$DIR/tools-log4j.properties" \
        -cp "$(classpath)" "$@"
}

# Shows why the broker failed: its first errors (the cause; what follows
# them is mostly the shutdown they set off) and the end of its log.
log_tail() {
    if grep -qE '^\[[^]]*\] (ERROR|FATAL) ' "$DIR/broker.log" 2>/dev/null; then
        say "the first errors in $DIR/broker.log:"
        grep -m 3 -A 1 -E '^\[[^]]*\] (ERROR|FATAL) ' "$DIR/broker.log" >&2 || true
    fi
    if [ -s "$DIR/broker.log" ]; then
        say "the last lines of $DIR/broker.log:"
        tail -n 25 "$DIR/broker.log" >&2
    fi
    if [ -s "$DIR/jvm.out" ]; then
        say "the JVM's output ($DIR/jvm.out):"
        tail -n 20 "$DIR/jvm.out" >&2
    fi
}

# Serving: the broker logged that it started (it has registered with its
# controller and is unfenced) and its client port accepts connections.
serving() { # PORT
    grep -q "Kafka Server started" "$DIR/broker.log" 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Formats the storage and launches the broker on the given ports, then
# waits until it serves. Sets LAUNCHED to "yes" when it serves, "port" when
# it died of a port already in use (the caller may try other ports), and
# exits otherwise. (A result variable rather than a status: a function
# called as `launch || ...` would run with errexit off.)
launch() { # PORT CONTROLLER_PORT
    local port=$1 cport=$2 cluster_id
    LAUNCHED=no
    rm -rf "$DIR/data" "$DIR/broker.log" "$DIR/jvm.out"
    write_config "$port" "$cport"
    # A cluster id is 16 random bytes in unpadded base64url, what
    # `StorageTool random-uuid` prints; made here to save a JVM start. Passed
    # as --cluster-id=ID: one in 64 starts with '-', which the tool's
    # argument parser takes for an option when it stands alone.
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    if ! run_tool kafka.tools.StorageTool format --standalone --cluster-id="$cluster_id" \
        -c "$DIR/server.properties" >"$DIR/format.out" 2>&1; then
        cat "$DIR/format.out" >&2
        die "kafka.tools.StorageTool format failed"
    fi
    run_jvm "$port"
}

# Starts the JVM on the configuration and data in $DIR and waits until it
# serves on PORT; sets LAUNCHED (yes, or port when the port was taken).
run_jvm() { # PORT
    local port=$1 pid waited=0
    # stdin, stdout and stderr are all redirected so that the broker holds
    # no pipe of its caller's open: $(broker.sh start) returns when start does.
    # Modest heap: the broker shares the machine with the tests.
    # shellcheck disable=SC2086 # HEAP is a list of options
    java $HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$DIR/log4j.properties" \
        -cp "$(classpath)" kafka.Kafka "$DIR/server.properties" \
        </dev/null >"$DIR/jvm.out" 2>&1 &
    pid=$!
    echo "$pid" >"$DIR/pid"
    while ! serving "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            if grep -qE "Address already in use|BindException" \
                "$DIR/broker.log" "$DIR/jvm.out" 2>/dev/null; then
                rm -f "$DIR/pid"
                LAUNCHED=port
                return 0
            fi
            log_tail
            rm -f "$DIR/pid"
            die "the broker (pid $pid) exited while starting"
        fi
        if [ "$waited" -ge $((START_TIMEOUT * 5)) ]; then
            log_tail
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$DIR/pid"
            die "the broker did not serve on 127.0.0.1:$port within ${START_TIMEOUT}s"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    LAUNCHED=yes
}

# Stops the broker (broker.sh stop) once the process OWNER has ended; ends
# by itself when the broker stops first. Its output goes to watchdog.log.
check_owner() { # OWNER
    case "$1" in
    '' | *[!0-9]*) die "RN_KAFKA_WATCH_PID must be a pid, not '$1'" ;;
    esac
    kill -0 "$1" 2>/dev/null || die "RN_KAFKA_WATCH_PID $1: no such process"
}

start_watchdog() { # OWNER (checked by check_owner)
    local owner=$1
    # A restart (cmd_restart) leaves a moment with no broker; the marker
    # file keeps the watchdog from taking that for a stop and ending, or
    # worse, from stopping the new broker as its owner's leftover.
    (
        while kill -0 "$owner" 2>/dev/null; do
            if ! broker_pid >/dev/null && [ ! -e "$DIR/restarting" ] &&
                ! broker_pid >/dev/null; then
                exit 0
            fi
            sleep 1
        done
        # The owner ended in the middle of a restart: the new broker is
        # stopped once it is up (or the restart gave up).
        for _ in $(seq 1 300); do
            [ -e "$DIR/restarting" ] || break
            sleep 0.2
        done
        if broker_pid >/dev/null; then
            echo "process $owner ended; stopping its broker"
            RN_KAFKA_DIR=$DIR "$SELF" stop
        fi
    ) </dev/null >>"$DIR/watchdog.log" 2>&1 &
    echo $! >"$DIR/watchdog.pid"
    say "the broker stops when process $owner ends (watchdog pid $!)"
}

# ---- commands ---------------------------------------------------------------

cmd_start() {
    local pid port cport attempt t0
    t0=$(date +%s%N)
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    if pid=$(broker_pid); then
        die "a broker already runs from $DIR (pid $pid, port $(cat "$DIR/port"));" \
            "run '$0 stop' first"
    fi
    rm -f "$DIR/restarting" # left by a restart that was killed
    # Checked before the broker starts, so that a bad value leaves none running.
    if [ -n "${RN_KAFKA_WATCH_PID:-}" ]; then
        check_owner "$RN_KAFKA_WATCH_PID"
    fi
    ensure_tools
    ensure_jars
    for attempt in 1 2 3; do
        port=${RN_KAFKA_PORT:-$(free_port)}
        cport=${RN_KAFKA_CONTROLLER_PORT:-$(free_port "$port")}
        [ "$port" != "$cport" ] || die "RN_KAFKA_PORT and RN_KAFKA_CONTROLLER_PORT are both $port"
        say "starting Kafka $VERSION on 127.0.0.1:$port (controller $cport) in $DIR"
        launch "$port" "$cport"
        [ "$LAUNCHED" = yes ] && break
        # Ports given by the caller are not ours to change.
        if [ -n "${RN_KAFKA_PORT:-}${RN_KAFKA_CONTROLLER_PORT:-}" ] || [ "$attempt" -eq 3 ]; then
            grep -m 1 -E "failed to bind|BindException" "$DIR/broker.log" "$DIR/jvm.out" >&2 || true
            die "port $port or $cport is already in use (log: $DIR/broker.log)"
        fi
        say "port $port or $cport was taken meanwhile; trying others"
    done
    if [ -n "${RN_KAFKA_WATCH_PID:-}" ]; then
        start_watchdog "$RN_KAFKA_WATCH_PID"
    fi
    say "serving after $((($(date +%s%N) - t0) / 1000000)) ms" \
        "(pid $(cat "$DIR/pid"), log $DIR/broker.log)"
    echo "127.0.0.1:$port"
}

cmd_stop() {
    local pid
    if pid=$(broker_pid); then
        say "stopping the broker (pid $pid) of $DIR"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 $((STOP_TIMEOUT * 5))); do
            broker_pid >/dev/null || break
            sleep 0.2
        done
        if broker_pid >/dev/null; then
            say "the broker did not stop within ${STOP_TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                broker_pid >/dev/null || break
                sleep 0.2
            done
            ! broker_pid >/dev/null || die "pid $pid survived SIGKILL"
        fi
    fi
    # Only the data goes: broker.log and the configuration stay for a
    # post-mortem of a failed test.
    rm -rf "$DIR/data"
    rm -f "$DIR/pid" "$DIR/restarting"
}

cmd_restart() {
    local pid port wd
    pid=$(broker_pid) || die "no broker runs from $DIR"
    port=$(cat "$DIR/port")
    say "restarting the broker (pid $pid) of $DIR"
    touch "$DIR/restarting"
    trap 'rm -f "$DIR/restarting"' EXIT
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((STOP_TIMEOUT * 5))); do
        broker_pid >/dev/null || break
        sleep 0.2
    done
    if broker_pid >/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    run_jvm "$port"
    [ "$LAUNCHED" = yes ] || die "the broker did not start again on port $port"
    rm -f "$DIR/restarting"
    # The watchdog waits out a restart; one is started only if it is gone.
    wd=$(cat "$DIR/watchdog.pid" 2>/dev/null || true)
    if [ -n "${RN_KAFKA_WATCH_PID:-}" ] && kill -0 "$RN_KAFKA_WATCH_PID" 2>/dev/null &&
        ! { [ -n "$wd" ] && kill -0 "$wd" 2>/dev/null; }; then
        start_watchdog "$RN_KAFKA_WATCH_PID"
    fi
    say "serving again (pid $(cat "$DIR/pid"))"
}

cmd_topic() { # NAME PARTITIONS
    local name=$1 partitions=$2 pid port main out have
    case "$partitions" in
    '' | *[!0-9]* | 0) die "PARTITIONS must be a positive number, not '$partitions'" ;;
    esac
    pid=$(broker_pid) || die "no broker runs from $DIR (run '$0 start' first)"
    port=$(cat "$DIR/port")
    CACHE=$(cat "$DIR/cache")
    # TopicCommand moved from core to kafka-tools in Kafka 3.5.
    main=kafka.admin.TopicCommand
    if compgen -G "$CACHE/lib/kafka-tools-[0-9]*.jar" >/dev/null; then
        main=org.apache.kafka.tools.TopicCommand
    fi
    out=$(run_tool "$main" --bootstrap-server "127.0.0.1:$port" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor 1 2>&1) ||
        die "creating topic '$name' failed: $out"
    case "$out" in
    *"Created topic"*)
        say "created topic '$name' with $partitions partitions (broker pid $pid)"
        return 0
        ;;
    esac
    # It existed already: fine only with as many partitions as asked for.
    out=$(run_tool "$main" --bootstrap-server "127.0.0.1:$port" --describe \
        --topic "$name" 2>&1) || die "describing topic '$name' failed: $out"
    have=$(echo "$out" | sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n 1)
    [ "$have" = "$partitions" ] ||
        die "topic '$name' exists with ${have:-?} partitions, not $partitions"
    say "topic '$name' exists already with $partitions partitions"
}

cmd_partitions() { # NAME PARTITIONS: more partitions for an existing topic
    local name=$1 partitions=$2 port main out
    case "$partitions" in
    '' | *[!0-9]* | 0) die "PARTITIONS must be a positive number, not '$partitions'" ;;
    esac
    broker_pid >/dev/null || die "no broker runs from $DIR (run '$0 start' first)"
    port=$(cat "$DIR/port")
    CACHE=$(cat "$DIR/cache")
    main=kafka.admin.TopicCommand
    if compgen -G "$CACHE/lib/kafka-tools-[0-9]*.jar" >/dev/null; then
        main=org.apache.kafka.tools.TopicCommand
    fi
    out=$(run_tool "$main" --bootstrap-server "127.0.0.1:$port" --alter \
        --topic "$name" --partitions "$partitions" 2>&1) ||
        die "giving topic '$name' $partitions partitions failed: $out"
    say "topic '$name' now has $partitions partitions"
}

case "${1:-}" in
start)
    [ $# -eq 1 ] || die "usage: $0 start"
    cmd_start
    ;;
stop)
    [ $# -eq 1 ] || die "usage: $0 stop"
    cmd_stop
    ;;
topic)
    [ $# -eq 3 ] || die "usage: $0 topic NAME PARTITIONS"
    cmd_topic "$2" "$3"
    ;;
partitions)
    [ $# -eq 3 ] || die "usage: $0 partitions NAME PARTITIONS"
    cmd_partitions "$2" "$3"
    ;;
restart)
    [ $# -eq 1 ] || die "usage: $0 restart"
    cmd_restart
    ;;
*)
    die "usage: $0 start | stop | restart | topic NAME PARTITIONS | partitions NAME PARTITIONS"
    ;;
esac
