#!/usr/bin/env bash
# The whole test suite. Installs what the tests need, then runs them; exits non-zero on
# the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${WEIR_FUZZ_SECONDS:-15}"

# A stage's heading, with the time the suite has run so far (to see where the time goes).
stage() {
    printf '== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"
}

stage "installing test clients"
bash tests/compat/install.sh --quick
# SeaweedFS, the S3 server of the object-store outage test, is a Go build of several
# minutes on a fresh machine (cached after, by version): it runs in the background while
# the cargo stage builds, and that test waits for it.
seaweed_log="$(mktemp)"
bash tests/cluster/install.sh >"$seaweed_log" 2>&1 &
seaweed_pid=$!

stage "cargo test, beside a throwaway PostgreSQL for weir-cluster's tests (their buckets directories)"
# One build of every target (the binary and the tests, with one set of features), so the
# test run below compiles nothing more. The same cluster tests against a real S3 server
# (SeaweedFS, whose build takes minutes on a fresh machine) run on demand:
# bash tests/cluster/install.sh, then
# python3 tests/cluster/services.py with-services -- cargo test --release -p weir-cluster
cargo build --release --workspace --all-targets
python3 tests/cluster/services.py with-postgres -- cargo test --release --workspace

stage "fuzzing each decoder for ${FUZZ_SECONDS}s"
# cargo-fuzz needs a nightly toolchain. Where none is installed and rustup cannot fetch
# one, the stable mutated-frame test above (crates/wire/tests/random_frames.rs) is what
# guards the decoder, and this stage says so.
if ! rustup toolchain list | grep -q nightly; then
    rustup toolchain install nightly --profile minimal || true
fi
if rustup toolchain list | grep -q nightly; then
    if ! command -v cargo-fuzz >/dev/null; then
        cargo install cargo-fuzz --locked
    fi
    (
        cd fuzz
        for target in $(cargo +nightly fuzz list); do
            cargo +nightly fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096
        done
    )
else
    echo "no nightly toolchain could be installed: cargo-fuzz targets not run; the stable mutated-frame test ran in cargo test"
fi

stage "durability: kill -9 under acks=all, 20 rounds"
python3 tests/durability/crash.py "$PWD/target/release/weir" "${WEIR_CRASH_ROUNDS:-20}"

stage "durability: transactions (3 producers, consume-transform-produce) across kill -9, ${WEIR_TXN_CRASH_ROUNDS:-10} kills"
python3 tests/durability/txn_crash.py "$PWD/target/release/weir" "${WEIR_TXN_CRASH_ROUNDS:-10}"

stage "durability: SCRAM credentials set by Kafka's kafka-configs across kill -9, 3 rounds"
python3 tests/durability/scram_crash.py "$PWD/target/release/weir" 3

stage "cluster mode: two brokers sharing one catalog, membership and log; a killed broker leaves after its lease, a frozen one stops serving"
python3 tests/cluster/services.py with-postgres -- python3 tests/cluster/serve_test.py "$PWD/target/release/weir"

stage "cluster mode: three brokers on one PostgreSQL (the bucket a directory): the Java client, librdkafka and franz-go through each, transactions included; every broker's console and API showing the groups the controller coordinates; ${WEIR_CLUSTER_ROUNDS:-5} kill -9 failover rounds under idempotent acks=all producers and a consumer group; a fourth broker added and removed under load"
python3 tests/cluster/cluster_test.py "$PWD/target/release/weir" --rounds "${WEIR_CLUSTER_ROUNDS:-5}" \
    --scenarios clients,console,failover,scale

stage "cluster mode: three brokers on PostgreSQL and a SeaweedFS bucket; a compacted topic and __consumer_offsets compacted, replayed by the next controller; PostgreSQL, then SeaweedFS, stopped for 4 s under load"
wait "$seaweed_pid" || { cat "$seaweed_log"; echo "building SeaweedFS failed" >&2; exit 1; }
tail -n 1 "$seaweed_log"
python3 tests/cluster/cluster_test.py "$PWD/target/release/weir" --s3 --scenarios compaction,outages

stage "compatibility: real clients against weir (the quick subset; tests/compat/run.py runs all, against Apache Kafka too)"
python3 tests/compat/run.py --broker weir --weir-bin "$PWD/target/release/weir" \
    --clients "${WEIR_COMPAT_CLIENTS:-kcat,confluent-kafka,java,franz-go,sarama,kafka-python,aiokafka,kafkajs}" \
    --scenarios basic,group,consumer,txn,streams,connect

stage "differential: static members restarting, members joining together, per-record produce errors; Apache Kafka and weir"
python3 tests/compat/run.py --broker both --weir-bin "$PWD/target/release/weir" \
    --clients confluent-kafka,java --scenarios static,produce-errors

stage "incremental reconciliation: 10 consumer-protocol members, one joins and one leaves, the others never stop fetching for longer than a heartbeat interval"
python3 tests/compat/incremental.py --broker weir --weir-bin "$PWD/target/release/weir"

stage "transactions with the consumer group protocol: the Java consume-transform-produce member on group.protocol=consumer"
COMPAT_GROUP_PROTOCOL=consumer python3 tests/compat/run.py --broker weir --weir-bin "$PWD/target/release/weir" \
    --clients java --scenarios txn

stage "online migration: a classic group of 3 rolled to the consumer protocol one member at a time while consuming, then back; no record skipped"
python3 tests/compat/migration.py --broker weir --weir-bin "$PWD/target/release/weir"

stage "client telemetry (KIP-714): kafka-client-metrics.sh on both brokers, Java and confluent-kafka producers pushing metrics to weir"
python3 tests/compat/telemetry.py --broker both --weir-bin "$PWD/target/release/weir"
stage "admin APIs a single node answers (OffsetForLeaderEpoch, DescribeTopicPartitions, ElectLeaders, partition reassignments, features) with the Java client and Kafka's tools, against weir and Apache Kafka"
python3 tests/compat/admin_apis.py --broker both --weir-bin "$PWD/target/release/weir"
stage "Apache Kafka's admin tools (kafka-topics, kafka-configs, kafka-consumer-groups, ...) against weir and Apache Kafka, outputs compared"
python3 tests/compat/tools.py --broker both --weir-bin "$PWD/target/release/weir"

stage "security: TLS, mTLS and SASL (PLAIN, SCRAM-SHA-256/512) with the Java client, Kafka's console tools, kcat, confluent-kafka and franz-go; refusals, SCRAM credentials over the wire and the SASL exchange as bytes; Apache Kafka and weir"
python3 tests/security/tls_sasl.py --broker both --weir-bin "$PWD/target/release/weir"
stage "client quotas: a producer_byte_rate set with kafka-configs holds a confluent-kafka producer within 10% of it while an unthrottled producer runs beside it at full speed, and a consumer_byte_rate holds a consumer; Apache Kafka and weir"
python3 tests/security/quotas.py --broker both --weir-bin "$PWD/target/release/weir"
stage "request and controller-mutation quotas: a request_percentage set with kafka-configs throttles and slows a confluent-kafka admin client asking for metadata in a loop while one without a quota is not throttled, a controller_mutation_rate refuses the topic changes past its burst with THROTTLING_QUOTA_EXCEEDED to Kafka's Java admin client, and a connection_creation_rate closes the connections past its burst unserved; Apache Kafka and weir"
python3 tests/security/quotas_requests.py --broker both --weir-bin "$PWD/target/release/weir"
stage "security: OAUTHBEARER tokens against a JWKS file (valid, expired, foreign, misaddressed) and re-authentication, with librdkafka; Apache Kafka and weir"
python3 tests/security/oauthbearer.py --broker both --weir-bin "$PWD/target/release/weir"
stage "security: the ACL matrix, every API the Java client and Kafka's tools use, asked by principals with, without and with partial ACLs; Apache Kafka and weir with the same ACLs answer alike"
python3 tests/security/acl_matrix.py --broker both --weir-bin "$PWD/target/release/weir"

stage "Prometheus scrapes weir: a real Prometheus server, PromQL for a group's lag, up, partition and process metrics"
python3 tests/metrics/prometheus_test.py "$PWD/target/release/weir"

stage "web console in Chromium (Playwright): every page at desktop and phone widths, light and dark, without a console error; an offset reset previewed, executed and undone, checked through the Kafka protocol"
(cd tests/console && npm ci --silent --no-audit --no-fund)
node tests/console/console_test.mjs "$PWD/target/release/weir" "$PWD/tests/console/screenshots"
stage "web console with security on: 401 and the Basic challenge without a login, the super user works the console (an offset reset from the group page), a user without ACLs sees no topic or group and is refused with 403"
node tests/console/login_test.mjs "$PWD/target/release/weir"

stage "the weir CLI against weir and Apache Kafka"
python3 tests/cli/cli_test.py "$PWD/target/release/weir" --broker both

stage "acceptance: codecs, static membership, restart and Kafka's tools against weir"
python3 tests/acceptance/acceptance.py "$PWD/target/release/weir"
