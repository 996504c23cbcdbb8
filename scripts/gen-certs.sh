#!/usr/bin/env bash
# Makes a throwaway certificate authority and PEM certificates for samsa's TLS listeners, for
# tests and examples (never for production: the CA key sits next to the certificates).
#
#   scripts/gen-certs.sh DIR [NODE_NAME...] [--san NAME...] [--client NAME...]
#
# DIR/ca.pem                 the CA certificate (ssl.truststore.location for nodes and clients)
# DIR/<name>.pem             private key + certificate chain in one file (ssl.keystore.location)
# DIR/<name>.key, .crt       the same key and certificate, separately (clients' ssl.key.location,
#                            ssl.certificate.location)
# DIR/<name>.enc.pem         the key encrypted with the password in DIR/<name>.password (PKCS#8,
#                            PBES2 AES-256), then the chain: ssl.keystore.location + ssl.key.password
# Node certificates name localhost, 127.0.0.1 and the node name as subjectAltNames, plus every
# --san NAME, in which {node} stands for the node name (Kubernetes:
# `--san '{node}.samsa-headless' --san samsa` for the pods' DNS names and the client Service); client
# certificates have the subject CN=<name>,OU=clients,O=samsa. Default: node "localhost", no
# clients. Idempotent per DIR: an existing CA is reused.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [NODE_NAME...] [--client NAME...]" >&2
  exit 2
fi
dir=$1; shift
nodes=(); clients=(); sans=(); into=nodes
for a in "$@"; do
  case "$a" in
    --client) into=clients; continue ;;
    --san) into=sans; continue ;;
  esac
  case "$into" in
    nodes) nodes+=("$a") ;;
    clients) clients+=("$a") ;;
    sans) sans+=("$a"); into=nodes ;;
  esac
done
[ ${#nodes[@]} -eq 0 ] && nodes=(localhost)
mkdir -p "$dir"
cd "$dir"
DAYS=825

if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days "$DAYS" \
    -subj "/O=samsa/CN=samsa test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi

# issue NAME SUBJECT EXTFILE_CONTENT
issue() {
  local name=$1 subject=$2 ext=$3
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.crt" \
    -days "$DAYS" -extfile "$name.ext" 2>/dev/null
  cat "$name.key" "$name.crt" ca.pem > "$name.pem"
  local password="${name}-key-password"
  printf '%s' "$password" > "$name.password"
  openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$name.key" -passout "pass:$password" -out "$name.enc.key"
  cat "$name.enc.key" "$name.crt" ca.pem > "$name.enc.pem"
  rm -f "$name.csr" "$name.ext"
}

for n in "${nodes[@]}"; do
  extra=""
  for s in "${sans[@]+"${sans[@]}"}"; do extra+=",DNS:${s//\{node\}/$n}"; done
  issue "$n" "/O=samsa/OU=nodes/CN=$n" \
    "subjectAltName=DNS:$n$extra,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth
basicConstraints=CA:FALSE"
done
for c in "${clients[@]}"; do
  issue "$c" "/O=samsa/OU=clients/CN=$c" \
    "extendedKeyUsage=clientAuth
basicConstraints=CA:FALSE"
done
echo "certificates in $PWD: ca.pem; ${nodes[*]}${clients[*]:+; clients ${clients[*]}}"
