#!/usr/bin/env bash
# Local Apache Kafka broker (KRaft, single node) for qualm's tests and demo.
#
#   scripts/kafka.sh fetch    resolve the broker jars via Maven into
#                             .cache/kafka/<version>/libs (idempotent)
#   scripts/kafka.sh libs     print the libs dir (fetching first if needed)
#   scripts/kafka.sh start    start a long-lived dev broker in the background
#                             on 127.0.0.1:${QUALM_KAFKA_PORT:-9092}
#   scripts/kafka.sh stop     stop that dev broker
#   scripts/kafka.sh status   say whether it is running
#
# Tests do not use start/stop: they call startLocalKafka() from
# src/local-kafka, which picks free ports and a throw-away data dir.
# See docs/kafka.md.
#
# Environment:
#   QUALM_KAFKA_VERSION  broker version (default: the pinned one below;
#                        other versions are for experiments only)
#   QUALM_KAFKA_PORT     start: PLAINTEXT port (default 9092)
#   QUALM_KAFKA_CONTROLLER_PORT  start: controller port (default 9093)
set -euo pipefail

PINNED_VERSION=3.9.2 # keep in step with tools/kafka/pom.xml and src/local-kafka/version.ts
VERSION="${QUALM_KAFKA_VERSION:-$PINNED_VERSION}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="$ROOT/.cache/kafka/$VERSION"
LIBS="$BASE/libs"
MARKER="$BASE/COMPLETE"

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
  if [[ -f "$MARKER" && -d "$LIBS" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (need Maven 3 and Java 17+)"
  command -v java >/dev/null || die "java not found (need Java 17+)"
  mkdir -p "$BASE"
  # Copy into a private dir and rename, so concurrent fetches never see a
  # half-filled libs dir.
  FETCH_TMP="$(mktemp -d "$BASE/libs.tmp.XXXXXX")"
  trap 'rm -rf "$FETCH_TMP"' EXIT
  local tmp="$FETCH_TMP"
  echo "kafka.sh: fetching Apache Kafka $VERSION jars via Maven..." >&2
  mvn -q -B -Dstyle.color=never -f "$ROOT/tools/kafka/pom.xml" \
    dependency:copy-dependencies \
    -Dkafka.version="$VERSION" \
    -DoutputDirectory="$tmp" -DincludeScope=runtime >&2 \
    || die "mvn dependency:copy-dependencies failed for kafka $VERSION"
  [[ -f "$tmp/kafka_2.13-$VERSION.jar" ]] || die "kafka_2.13-$VERSION.jar missing after mvn"
  if [[ -f "$MARKER" && -d "$LIBS" ]]; then
    return 0 # somebody else finished first
  fi
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  echo "$VERSION" >"$MARKER"
  echo "kafka.sh: kafka $VERSION jars in $LIBS" >&2
}

# --- long-lived dev broker (optional convenience) -------------------------
RUN="$ROOT/.cache/kafka/dev"
PIDFILE="$RUN/broker.pid"

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

start() {
  fetch
  if pid="$(running_pid)"; then
    echo "kafka.sh: dev broker already running (pid $pid)"
    return 0
  fi
  local port="${QUALM_KAFKA_PORT:-9092}" cport="${QUALM_KAFKA_CONTROLLER_PORT:-9093}"
  mkdir -p "$RUN"
  cat >"$RUN/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$RUN/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
EOF
  cat >"$RUN/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$RUN/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  if [[ ! -f "$RUN/data/meta.properties" ]]; then
    local cid
    # 16 random bytes, base64url; never starting with '-' (would parse as an option)
    cid=-
    while [[ "$cid" == -* ]]; do
      cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    java -Dlog4j.configuration="file:$RUN/log4j.properties" -cp "$LIBS/*" \
      kafka.tools.StorageTool format -t "$cid" -c "$RUN/server.properties" >"$RUN/format.log" 2>&1 \
      || { cat "$RUN/format.log" >&2; die "storage format failed"; }
  fi
  nohup java -Xmx512m -Dlog4j.configuration="file:$RUN/log4j.properties" -cp "$LIBS/*" \
    kafka.Kafka "$RUN/server.properties" >"$RUN/stdout.log" 2>&1 &
  echo $! >"$PIDFILE"
  echo "kafka.sh: dev broker $VERSION starting on 127.0.0.1:$port (pid $!, logs in $RUN)"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "kafka.sh: dev broker not running"
    rm -f "$PIDFILE"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  echo "kafka.sh: dev broker stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  libs) fetch; echo "$LIBS" ;;
  start) start ;;
  stop) stop ;;
  status)
    if pid="$(running_pid)"; then echo "running (pid $pid)"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 fetch|libs|start|stop|status" >&2; exit 2 ;;
esac
