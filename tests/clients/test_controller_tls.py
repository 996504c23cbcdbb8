"""Mutual TLS on the CONTROLLER listener: raft, controller calls and replication between
nodes over TLS (listener.security.protocol.map=...,CONTROLLER:SSL with
listener.name.controller.ssl.client.auth=required), with Kafka's ssl.* keys.

A three-node cluster forms and keeps every acknowledged write through the kill of the active
controller and of a partition leader; a connection to a CONTROLLER port without a certificate
from the cluster's CA, or with one whose principal may not CLUSTER_ACTION (the authorizer is on),
is refused; a SASL controller listener and a missing trust store stop the
node with a message.
"""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import SAMSA_BIN, Cluster

GEN_CERTS = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "gen-certs.sh")
RECORDS = 300


def controller_tls(certs, client_auth="required"):
    return ("listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL\n"
            f"listener.name.controller.ssl.keystore.location={certs}/localhost.enc.pem\n"
            f"listener.name.controller.ssl.key.password={open(f'{certs}/localhost.password').read().strip()}\n"
            f"listener.name.controller.ssl.truststore.location={certs}/ca.pem\n"
            f"listener.name.controller.ssl.client.auth={client_auth}\n")


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="samsa-controller-tls-")
    subprocess.run([GEN_CERTS, f"{d}/cluster", "localhost", "--client", "alice"], check=True, capture_output=True)
    subprocess.run([GEN_CERTS, f"{d}/rogue", "localhost"], check=True, capture_output=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_cluster(certs):
    # With an authorizer, a peer must be allowed CLUSTER_ACTION: the nodes' certificate principal
    # (mapped to node-localhost) is a super user, a client certificate from the same CA is not.
    # User:ANONYMOUS (the PLAINTEXT clients of this test) is one too, to keep the Kafka side open.
    authz = ("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
             "super.users=User:ANONYMOUS;User:node-localhost\nallow.everyone.if.no.acl.found=false\n"
             "listener.name.controller.ssl.principal.mapping.rules=RULE:^CN=([^,]*),OU=nodes,.*$/node-$1/,DEFAULT\n")
    c = Cluster(extra=controller_tls(f"{certs}/cluster") + authz + "min.insync.replicas=2\n")
    yield c
    try:
        c.stop()
    finally:
        shutil.rmtree(c.dir, ignore_errors=True)


def produce_all(bootstrap, topic, values):
    acked, failed = [], []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": 60000})
    for v in values:
        p.produce(topic, value=v.encode(),
                  on_delivery=lambda err, m: (failed if err else acked).append(m.value().decode()))
    assert p.flush(90) == 0
    assert not failed, failed[:3]
    return acked


def read_all(bootstrap, topic, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-" + uuid.uuid4().hex[:6],
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 60
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    return got


def controller_of(cluster):
    return AdminClient({"bootstrap.servers": cluster.all}).list_topics(timeout=10).controller_id


def leader_of(cluster, topic, partition=0):
    md = AdminClient({"bootstrap.servers": cluster.all}).list_topics(topic, timeout=10)
    return md.topics[topic].partitions[partition].leader


def until(check, timeout=30):
    deadline = time.time() + timeout
    while True:
        v = check()
        if v or time.time() > deadline:
            return v
        time.sleep(0.2)


def test_the_quorum_and_replication_run_over_mutual_tls_through_controller_and_leader_kills(tls_cluster):
    c = tls_cluster
    topic = "mtls-" + uuid.uuid4().hex[:8]
    a = AdminClient({"bootstrap.servers": c.all})
    a.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=30)
    first = [f"a-{i}" for i in range(RECORDS)]
    produce_all(c.all, topic, first)

    # The active controller dies: the other two elect one over TLS and admin requests work.
    dead = controller_of(c)
    c.kill(dead)
    alive = ",".join(c.bootstrap(i) for i in c.ports if i != dead)
    assert until(lambda: controller_of_alive(alive) not in (None, -1, dead)), "a new controller is elected"
    second_topic = "mtls2-" + uuid.uuid4().hex[:8]
    survivors = AdminClient({"bootstrap.servers": alive})  # kept: a future outlives only a referenced client
    survivors.create_topics([NewTopic(second_topic, 1, 2)])[second_topic].result(timeout=30)
    c.start(dead)

    # A partition leader dies under acks=all load; the followers (fetching over TLS) take over.
    victim = leader_of(c, topic)
    c.kill(victim)
    alive = ",".join(c.bootstrap(i) for i in c.ports if i != victim)
    second = [f"b-{i}" for i in range(RECORDS)]
    produce_all(alive, topic, second)
    c.start(victim)
    got = read_all(c.all, topic, 2 * RECORDS)
    assert sorted(got) == sorted(first + second), "every acknowledged record, once"


def controller_of_alive(bootstrap):
    try:
        return AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5).controller_id
    except Exception:
        return None


def tls_exchange(port, ca, cert=None, key=None):
    """Opens TLS to a CONTROLLER port and sends the HTTP/2 preface; returns what came back,
    or the error that ended the connection."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    if cert:
        ctx.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                data = s.recv(64)
                return data if data else ConnectionResetError("closed")
        except (ssl.SSLError, ConnectionError, OSError) as e:
            return e


def test_a_peer_without_the_clusters_certificate_is_refused(tls_cluster, certs):
    c = tls_cluster
    port = c.ports[1][1]
    cluster_ca = f"{certs}/cluster/ca.pem"
    # A node's own certificate is let in: the server answers the HTTP/2 preface with SETTINGS.
    ok = tls_exchange(port, cluster_ca, f"{certs}/cluster/localhost.crt", f"{certs}/cluster/localhost.key")
    assert isinstance(ok, bytes) and len(ok) >= 9 and ok[3] == 0x04, ok
    # No client certificate, or one from another CA: the handshake is refused.
    assert isinstance(tls_exchange(port, cluster_ca), Exception)
    assert isinstance(tls_exchange(port, cluster_ca, f"{certs}/rogue/localhost.crt", f"{certs}/rogue/localhost.key"),
                      Exception)
    # A certificate from the cluster's CA whose principal is not allowed CLUSTER_ACTION: closed.
    assert isinstance(tls_exchange(port, cluster_ca, f"{certs}/cluster/alice.crt", f"{certs}/cluster/alice.key"),
                      Exception)
    # Plaintext gRPC on the TLS port gets nothing back.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        try:
            data = s.recv(64)
        except ConnectionError:
            data = b""
        assert not data.startswith(b"\x00\x00"), data
    log = open(os.path.join(c.dir, "node1.log")).read()
    assert "TLS handshake refused" in log
    assert "principal refused" in log and "CN=alice,OU=clients,O=samsa" in log, "the refused principal is named"
    assert open(f"{certs}/cluster/localhost.password").read().strip() not in log


def start_fails(config_text):
    d = tempfile.mkdtemp(prefix="samsa-controller-tls-bad-")
    try:
        path = os.path.join(d, "node.properties")
        with open(path, "w") as f:
            f.write(config_text + f"log.dirs={d}/data\n")
        r = subprocess.run([SAMSA_BIN, "server", path], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        return r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_a_sasl_controller_listener_or_a_missing_trust_store_stops_the_node_with_a_message(certs):
    base = ("node.id=1\nprocess.roles=broker,controller\ncontroller.quorum.voters=1@127.0.0.1:29393\n"
            "listeners=PLAINTEXT://127.0.0.1:29392,CONTROLLER://127.0.0.1:29393\n")
    err = start_fails(base + "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL\n")
    assert "map it to SSL" in err, err
    no_trust = "\n".join(l for l in controller_tls(f"{certs}/cluster").splitlines() if "truststore" not in l) + "\n"
    err = start_fails(base + no_trust)
    assert "ssl.truststore.location" in err, err
    assert open(f"{certs}/cluster/localhost.password").read().strip() not in err
