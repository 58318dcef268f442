#!/usr/bin/env bash
# Installs every client of the compatibility harness, each pinned: confluent-kafka,
# kafka-python and aiokafka from PyPI; kcat from Debian; Apache Kafka (broker, tools, Java
# client), Kafka Streams and Kafka Connect (the applications under apps/) from Maven
# Central; franz-go and sarama from the Go module proxy; kafkajs from npm; the rdkafka crate
# from crates.io (it builds librdkafka from source: a few minutes, so --quick leaves it out).
#
#   install.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")"
quick="${1:-}"
python3 -m pip install --quiet --disable-pip-version-check \
    "confluent-kafka==2.16.1" "kafka-python==3.0.12" "aiokafka==0.14.0" "cryptography==48.0.0"
if ! command -v kcat >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kcat >/dev/null
fi
python3 -c 'import harness; harness.java_classpath()'
# The streams and connect scenarios' applications, resolved and compiled once into
# .work/apps (some 10 s once their jars are in the local Maven repository).
apps/build.sh streams >/dev/null
apps/build.sh connect >/dev/null
mkdir -p .work
(cd clients/go && go build -o ../../.work/franz ./franz && go build -o ../../.work/sarama ./sarama)
(cd clients/go && go build -o ../../.work/fetchgap ./fetchgap)
(cd clients/js && npm ci --no-audit --no-fund --silent)
if [ "$quick" != "--quick" ]; then
    echo "building the rdkafka crate (librdkafka from source)..."
    (cd clients/rust && cargo build --release --quiet --target-dir ../../.work/rust-target)
fi
