#!/usr/bin/env bash
# Makes the certificates of the TLS tests in DIR, all PEM, every private key PKCS#8 and
# unencrypted:
#
#   ca.pem, ca-key.pem              the test CA: the brokers trust client certificates it
#                                   signed, and the clients trust the server through it
#   server.pem, server-key.pem      the brokers' certificate, for 127.0.0.1 and localhost
#   server-chain.pem                server.pem then ca.pem
#   server-keystore.pem             server-key.pem then server-chain.pem: Apache Kafka's
#                                   ssl.keystore.type=PEM keystore
#   alice.pem, alice-key.pem        a client certificate signed by the CA, subject
#                                   CN=alice,OU=test,O=weir (principal User:CN=alice,OU=test,O=weir)
#   alice-keystore.pem              alice's key, her certificate and the CA's, in one file:
#                                   the Java client's ssl.keystore.type=PEM keystore
#   other-ca.pem, other-ca-key.pem  a second CA that no broker trusts
#   mallory.pem, mallory-key.pem,   a client certificate signed by other-ca
#   mallory-keystore.pem
#
# Files already in DIR are kept, so the certificates are made once per DIR.
#
#   certs.sh DIR
set -euo pipefail
dir="${1:?usage: certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"
[ -s mallory-keystore.pem ] && exit 0
days=3650

# An RSA key written as PKCS#8 (openssl genpkey writes PKCS#8 by default).
key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

# A self-signed CA: ca NAME SUBJECT
ca() {
    key "$1-key.pem"
    openssl req -x509 -new -key "$1-key.pem" -sha256 -days "$days" -subj "$2" -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# A leaf certificate signed by a CA: leaf NAME SUBJECT CA EXTENSIONS
leaf() {
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "$2" -out "$1.csr"
    printf '%s\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3-key.pem" -CAcreateserial -sha256 -days "$days" \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

ca ca "/O=weir/OU=test/CN=weir test CA"
leaf server "/O=weir/OU=test/CN=localhost" ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
cat server.pem ca.pem > server-chain.pem
cat server-key.pem server-chain.pem > server-keystore.pem
leaf alice "/O=weir/OU=test/CN=alice" ca "$client_ext"
cat alice-key.pem alice.pem ca.pem > alice-keystore.pem

ca other-ca "/O=elsewhere/CN=untrusted CA"
leaf mallory "/O=weir/OU=test/CN=mallory" other-ca "$client_ext"
cat mallory-key.pem mallory.pem other-ca.pem > mallory-keystore.pem
rm -f ./*.srl
