#!/usr/bin/env bash
# Prints the classpath of Apache Kafka (broker, tools, Java client) as resolved from Maven
# Central by pom.xml next to this script. Resolved once, then cached beside the harness;
# the jars themselves live in the normal Maven local repository.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="$here/../.work/kafka-classpath.txt"
mkdir -p "$(dirname "$cache")"
if [ ! -s "$cache" ] || [ "$cache" -ot "$here/pom.xml" ]; then
    echo "resolving Apache Kafka from Maven Central (first run only)..." >&2
    mvn -q -f "$here/pom.xml" dependency:build-classpath -Dmdep.outputFile="$cache.tmp" >&2
    mv "$cache.tmp" "$cache"
fi
cat "$cache"
