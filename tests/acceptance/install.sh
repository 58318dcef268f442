#!/usr/bin/env bash
# Installs the clients the acceptance scenarios use, pinned: confluent-kafka (librdkafka)
# from PyPI, kcat from Debian, and Apache Kafka's jars from Maven Central.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install --quiet --disable-pip-version-check "confluent-kafka==2.13.2"
if ! command -v kcat >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
    fi
fi
python3 -c 'import sys; sys.path.insert(0, "tests/acceptance"); import harness; harness.java_scenarios_classpath()'
python3 -m pip install --quiet --disable-pip-version-check "kafka-python==3.0.12"
(cd tests/acceptance/go && go build -o ../.work/franz-member .)
(cd tests/acceptance/js && npm ci --no-audit --no-fund --silent)
