#!/usr/bin/env python3
"""SASL/OAUTHBEARER, Apache Kafka against weir, as librdkafka (confluent-kafka) sees it.

  oauthbearer.py [--broker kafka|weir|both] [--weir-bin PATH]

Both brokers get a SASL_PLAINTEXT listener with OAUTHBEARER only, checking tokens against
the same JWKS file (an RSA key made here), with the expected audience "weir-test" and
issuer "https://issuer.test". Kafka uses its own validator
(OAuthBearerValidatorCallbackHandler with a file JWKS URL); weir gets
--sasl-oauthbearer-jwks-file. The client's oauth_cb hands over tokens signed here.

Checked on each broker:
1. a valid token (sub "alice"): N keyed records produced and read back;
2. refused, each as the client reports it: an expired token, one signed by another key,
   one for another audience, one from another issuer;
   the error code and message must equal what Kafka gives;
3. re-authentication (KIP-368): with connections.max.reauth.ms of 3 s and tokens living 60 s,
   a consumer reading for 8 s reads what is produced meanwhile without connecting again
   (librdkafka's statistics count its connects): its sessions were renewed in place;
4. the Java client through Kafka's own tools, its token read from a file by Kafka's
   OAuthBearerLoginCallbackHandler (`sasl.oauthbearer.token.endpoint.url=file://…`):
   kafka-console-producer and kafka-console-consumer round-trip records with a valid token,
   and kafka-topics with an expired one fails with the sentence Kafka gives.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "compat"))
import harness  # noqa: E402
from harness import KAFKA_DIR, Report, free_port  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

AUDIENCE = "weir-test"
ISSUER = "https://issuer.test"
REAUTH_MS = 3000
COUNT = 30


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Key:
    def __init__(self, kid):
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self):
        n = self.private.public_key().public_numbers()
        return {"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                "n": b64url(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
                "e": b64url(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big"))}

    def token(self, sub="alice", lifetime_s=60, aud=AUDIENCE, iss=ISSUER, kid=None):
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        claims = {"sub": sub, "iat": now, "exp": now + lifetime_s, "aud": aud, "iss": iss, "scope": "kafka"}
        signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = self.private.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signed + "." + b64url(sig), (now + lifetime_s) * 1000


class KafkaBroker:
    name = "kafka"

    def __init__(self, jwks):
        self.dir = tempfile.mkdtemp(prefix="kafka-oauth-")
        self.port, self.sasl = free_port(), free_port()
        self.jwks = jwks

    def bootstrap(self):
        return f"127.0.0.1:{self.sasl}"

    def start(self):
        url = "file://" + self.jwks
        lines = [
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=OAUTHBEARER",
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config="
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
            "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class="
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
            f"sasl.oauthbearer.jwks.endpoint.url={url}",
            f"sasl.oauthbearer.expected.audience={AUDIENCE}",
            f"sasl.oauthbearer.expected.issuer={ISSUER}",
            f"connections.max.reauth.ms={REAUTH_MS}",
        ]
        extra = os.path.join(self.dir, "oauth.properties")
        with open(extra, "w") as f:
            f.write("\n".join(lines) + "\n")
        env = dict(os.environ, KAFKA_EXTRA_LISTENERS=f"SASL_PLAINTEXT://127.0.0.1:{self.sasl}",
                   KAFKA_EXTRA_PROPERTIES=extra,
                   KAFKA_HEAP=f"-Xmx768m -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={url}")
        subprocess.run([os.path.join(KAFKA_DIR, "start.sh"), str(self.port), self.dir], check=True,
                       timeout=180, env=env)

    def stop(self):
        subprocess.run([os.path.join(KAFKA_DIR, "stop.sh"), self.dir], check=True, timeout=120)


class WeirBroker:
    name = "weir"

    def __init__(self, bin_path, jwks):
        self.weir = harness.Weir(bin_path)
        self.sasl = free_port()
        # --listeners replaces --listen; its PLAINTEXT listener keeps the port the harness
        # waits on.
        self.weir.extra = ["--listeners",
                           f"PLAINTEXT://{self.weir.bootstrap},SASL_PLAINTEXT://127.0.0.1:{self.sasl}",
                           "--sasl-enabled-mechanisms", "OAUTHBEARER",
                           "--sasl-oauthbearer-jwks-file", jwks,
                           "--sasl-oauthbearer-expected-audience", AUDIENCE,
                           "--sasl-oauthbearer-expected-issuer", ISSUER,
                           "--connections-max-reauth-ms", str(REAUTH_MS)]

    def bootstrap(self):
        return f"127.0.0.1:{self.sasl}"

    def start(self):
        self.weir.start()

    def stop(self):
        self.weir.stop()


def client_config(bootstrap, make_token, calls):
    def oauth_cb(_config):
        calls.append(time.time())
        return make_token()
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER", "oauth_cb": oauth_cb}


def refusal(bootstrap, make_token):
    """What a producer reports when its token is refused: (error name, message)."""
    from confluent_kafka import Producer
    errors = []
    conf = client_config(bootstrap, make_token, [])
    conf["error_cb"] = lambda e: errors.append(e)
    conf["log_level"] = 0
    p = Producer(conf)
    deadline = time.time() + 10
    while time.time() < deadline and not any("authentication error" in e.str() for e in errors):
        p.poll(0.2)
    auth = [e for e in errors if "authentication error" in e.str()]
    if not auth:
        return ("no error", "; ".join(e.str() for e in errors))
    msg = auth[0].str().split("SASL authentication error: ", 1)[1].split(" (after ")[0]
    return (auth[0].name(), msg)


def round_trip(r, broker, key):
    from confluent_kafka import Consumer, Producer
    topic = f"oauth-{int(time.time() * 1000)}"
    calls = []
    p = Producer(client_config(broker.bootstrap(), lambda: key.token(), calls))
    for i in range(COUNT):
        p.produce(topic, key=f"k{i}", value=f"v{i}")
    left = p.flush(20)
    r.check(f"{broker.name} valid token: {COUNT} records acknowledged", left == 0, f"{left} not delivered")
    connects = {}

    def stats(text):
        for b in json.loads(text)["brokers"].values():
            if b.get("nodeid", -1) >= 0:
                connects[b["name"]] = b.get("connects", 0)
    c = Consumer(dict(client_config(broker.bootstrap(), lambda: key.token(), calls),
                      **{"group.id": "oauth", "auto.offset.reset": "earliest",
                         "statistics.interval.ms": 500, "stats_cb": stats}))
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < COUNT and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append((m.key().decode(), m.value().decode()))
    # Re-authentication: the consumer stays on for 8 s (sessions last 3 s), reading what a
    # producer sends meanwhile, without connecting again.
    connects_before = dict(connects)
    started = time.time()
    more = 0
    while time.time() - started < 8:
        p.produce(topic, key="late", value="late")
        p.poll(0)
        m = c.poll(0.5)
        if m is not None and not m.error():
            more += 1
    p.flush(10)
    c.poll(1)
    connects_after = dict(connects)
    c.close()
    r.check(f"{broker.name} valid token: the records read back", sorted(got) == sorted(
        (f"k{i}", f"v{i}") for i in range(COUNT)), f"{len(got)} read")
    r.check(f"{broker.name} re-authentication: the consumer kept reading through 8 s of 3 s sessions",
            more >= 8, f"{more} read")
    r.check(f"{broker.name} re-authentication: the consumer's connections re-authenticated instead of "
            "being closed", connects_before and connects_after == connects_before,
            f"connects before {connects_before}, after {connects_after}")


def java_config(work, name, token):
    """A Java client config whose login reads `token` (as oauth_cb gives it: the JWT first) from a file."""
    token_file = os.path.join(work, f"{name}.jwt")
    with open(token_file, "w") as f:
        f.write(token[0])
    config = os.path.join(work, f"{name}.properties")
    with open(config, "w") as f:
        f.write("security.protocol=SASL_PLAINTEXT\n"
                "sasl.mechanism=OAUTHBEARER\n"
                "sasl.login.callback.handler.class="
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n"
                f"sasl.oauthbearer.token.endpoint.url=file://{token_file}\n"
                "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;\n")
    return config, "file://" + token_file


def java_tool(name, args, allowed_url, stdin=None, timeout=90):
    env = dict(os.environ, KAFKA_TOOL_HEAP=f"-Xmx256m -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={allowed_url}")
    p = subprocess.run([os.path.join(KAFKA_DIR, "tool"), name] + args, input=stdin, capture_output=True,
                       text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def java_tools(r, broker, key, work):
    """Kafka's tools with a token file: a round trip, then an expired token's refusal."""
    b = broker.bootstrap()
    topic = f"oauth-java-{int(time.time() * 1000)}"
    config, url = java_config(work, f"{broker.name}-valid", key.token(lifetime_s=600))
    values = [f"java-{i}" for i in range(5)]
    code, _, err = java_tool("kafka-console-producer", ["--bootstrap-server", b, "--topic", topic,
                                                        "--producer.config", config], url,
                             stdin="\n".join(values) + "\n")
    r.check(f"{broker.name} Java client (kafka-console-producer) with a token file: produced", code == 0, err[-800:])
    code, out, err = java_tool("kafka-console-consumer", ["--bootstrap-server", b, "--topic", topic,
                                                          "--from-beginning", "--max-messages", str(len(values)),
                                                          "--timeout-ms", "30000", "--command-config", config], url)
    r.check(f"{broker.name} Java client (kafka-console-consumer) with a token file: read back",
            out.split() == values, f"exit {code}: {out!r} {err[-800:]}")
    config, url = java_config(work, f"{broker.name}-expired", key.token(lifetime_s=-120))
    code, out, err = java_tool("kafka-topics", ["--bootstrap-server", b, "--list", "--command-config", config], url)
    lines = [l.strip() for l in (out + err).splitlines() if "Error while executing" in l or "Exception:" in l]
    refused = lines[0] if lines else f"exit {code}, no exception: {(out + err)[-400:]}"
    print(f"  {broker.name} Java client, expired token: {refused}")
    return refused


def run(r, broker, key, other, work):
    broker.start()
    try:
        round_trip(r, broker, key)
        java_refused = java_tools(r, broker, key, work)
        cases = {
            "expired": lambda: key.token(lifetime_s=-120),
            "signed by another key": lambda: other.token(kid=key.kid),
            "another audience": lambda: key.token(aud="someone-else"),
            "another issuer": lambda: key.token(iss="https://elsewhere.test"),
        }
        answers = {name: refusal(broker.bootstrap(), make) for name, make in cases.items()}
        return answers, java_refused
    finally:
        broker.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_broker_args(ap)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="oauth-")
    key, other = Key("k1"), Key("k1-other")
    jwks = os.path.join(work, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [key.jwk()]}, f)
    r = Report()
    answers = {}
    java_answers = {}
    for name in harness.broker_names(args):
        broker = KafkaBroker(jwks) if name == "kafka" else WeirBroker(args.weir_bin, jwks)
        answers[name], java_answers[name] = run(r, broker, key, other, work)
        r.check(f"{name} Java client, expired token: refused as an invalid token",
                '"status":"invalid_token"' in java_answers[name], java_answers[name])
        for case, (code, msg) in answers[name].items():
            print(f"  {name} {case}: {code}: {msg}")
            r.check(f"{name} {case}: refused as an authentication failure", code == "_AUTHENTICATION", code)
    if len(answers) == 2:
        r.check("Java client, expired token: weir refuses as Kafka does", java_answers["weir"] == java_answers["kafka"],
                f"kafka: {java_answers['kafka']}\nweir:  {java_answers['weir']}")
        for case in answers["kafka"]:
            r.check(f"{case}: weir refuses as Kafka does", answers["weir"][case] == answers["kafka"][case],
                    f"kafka: {answers['kafka'][case]}\nweir:  {answers['weir'][case]}")
    r.finish()


if __name__ == "__main__":
    main()
