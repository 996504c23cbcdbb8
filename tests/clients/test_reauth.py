"""SASL re-authentication (KIP-368) with `connections.max.reauth.ms`: a session announces its
lifetime in SaslAuthenticate v1+, a client re-authenticates on the same connection (same
mechanism, same principal, at most once a second), and a connection used after its session
expired is closed. librdkafka re-authenticates by itself and loses nothing. (The node logs
authentications and closed connections at debug, so the test can count them.)
"""
import os
import shutil
import signal
import socket
import struct
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Producer

from conftest import free_port, start_server
from test_security import kstring, read_frame, request

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
LIFETIME_MS = 2000
SCRAM_LIFETIME_MS = 60000


class ReauthNode:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="samsa-reauth-")
        self.ports = {n: free_port() for n in ("SASL_PLAINTEXT", "CONTROLLER")}
        props = os.path.join(self.dir, "node.properties")
        with open(props, "w") as f:
            f.write(
                "node.id=1\nprocess.roles=broker,controller\n"
                f"controller.quorum.voters=1@127.0.0.1:{self.ports['CONTROLLER']}\n"
                "listeners=" + ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()) + "\n"
                "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT\n"
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512\n"
                f'listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN} required user_bob="bob-pw" '
                'user_carol="carol-pw";\n'
                f"connections.max.reauth.ms={LIFETIME_MS}\n"
                f"listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms={SCRAM_LIFETIME_MS}\n"
                f"log.dirs={self.dir}/data\n")
        self.log = os.path.join(self.dir, "node.log")
        env = {**os.environ, "SAMSA_LOG": "info,samsa::kafka::authenticate=debug,samsa::kafka::closed=debug"}
        self.proc = start_server(props, self.log, "--add-scram", "SCRAM-SHA-512=[name=root,password=root-pw]", env=env)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def node():
    n = ReauthNode()
    yield n
    try:
        n.stop()
    finally:
        shutil.rmtree(n.dir, ignore_errors=True)


def plain_login(s, user, correlation_id, version=1):
    """SaslHandshake v1 for PLAIN, then SaslAuthenticate; returns (error_code, session_lifetime_ms)."""
    s.sendall(request(17, 1, kstring(b"PLAIN"), correlation_id=correlation_id))
    corr, code = struct.unpack(">ih", read_frame(s)[:6])
    assert corr == correlation_id
    if code != 0:
        return code, None
    token = b"\0" + user.encode() + b"\0" + user.encode() + b"-pw"
    s.sendall(request(36, version, struct.pack(">i", len(token)) + token, correlation_id=correlation_id + 1))
    answer = read_frame(s)
    corr, code, msg_len = struct.unpack(">ihh", answer[:8])
    at = 8 + max(msg_len, 0)
    (auth_len,) = struct.unpack(">i", answer[at:at + 4])
    at += 4 + auth_len
    lifetime = struct.unpack(">q", answer[at:at + 8])[0] if version >= 1 else None
    return code, lifetime


def metadata_ok(s, correlation_id):
    s.sendall(request(3, 1, struct.pack(">i", -1), correlation_id=correlation_id))
    answer = read_frame(s)
    return answer is not None and struct.unpack(">i", answer[:4]) == (correlation_id,)


def connect(node):
    return socket.create_connection(("127.0.0.1", node.ports["SASL_PLAINTEXT"]), timeout=10)


def test_a_session_announces_its_lifetime_and_re_authenticates_on_the_same_connection(node):
    with connect(node) as s:
        assert plain_login(s, "bob", 1) == (0, LIFETIME_MS)
        assert metadata_ok(s, 3)
        time.sleep(1.1)
        assert plain_login(s, "bob", 4) == (0, LIFETIME_MS), "re-authenticated"
        assert metadata_ok(s, 6)
        # A second re-authentication within a second is an ordinary late handshake.
        s.sendall(request(17, 1, kstring(b"PLAIN"), correlation_id=7))
        assert struct.unpack(">ih", read_frame(s)[:6]) == (7, 34), "ILLEGAL_SASL_STATE"
        # Past the first lifetime, the re-authenticated session still serves.
        time.sleep(1.2)
        assert metadata_ok(s, 8)
        # Re-authenticating as someone else fails and closes the connection.
        code, _ = plain_login(s, "carol", 9)
        assert code == 58, "SASL_AUTHENTICATION_FAILED"
        assert read_frame(s) is None
    with open(node.log) as f:
        log = f.read()
    assert "re-authentication cannot change the principal (from User:bob to User:carol)" in log
    assert "carol-pw" not in log and "bob-pw" not in log


def test_a_connection_used_after_its_session_expired_is_closed(node):
    for version in (0, 1):  # SaslAuthenticate v0 answers no lifetime, yet the session ends too
        with connect(node) as s:
            assert plain_login(s, "bob", 1, version=version)[0] == 0
            assert metadata_ok(s, 3)
            time.sleep(LIFETIME_MS / 1000 + 0.3)
            assert not metadata_ok(s, 4), "an expired session closes on its next request"
    with open(node.log) as f:
        assert "SASL session expired" in f.read()
    # A re-authentication with another mechanism is refused.
    with connect(node) as s:
        assert plain_login(s, "bob", 1) == (0, LIFETIME_MS)
        time.sleep(1.1)
        s.sendall(request(17, 1, kstring(b"SCRAM-SHA-512"), correlation_id=5))
        assert struct.unpack(">ih", read_frame(s)[:6]) == (5, 33), "UNSUPPORTED_SASL_MECHANISM"
        assert read_frame(s) is None


def test_librdkafka_re_authenticates_by_itself_and_loses_nothing(node):
    topic = "reauth-" + uuid.uuid4().hex[:8]
    with open(node.log) as f:
        before = f.read().count("reauthentication=true")
    failed, acked = [], []
    p = Producer({"bootstrap.servers": f"127.0.0.1:{node.ports['SASL_PLAINTEXT']}", "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "bob", "sasl.password": "bob-pw", "acks": "all",
                  "client.id": "reauth-producer"})
    deadline = time.time() + 3 * LIFETIME_MS / 1000 + 1
    i = 0
    while time.time() < deadline:
        p.produce(topic, value=f"v{i}".encode(),
                  on_delivery=lambda err, m: (failed if err else acked).append(err or m.offset()))
        p.poll(0.1)
        i += 1
    assert p.flush(30) == 0
    assert not failed, failed[:3]
    assert len(acked) == i
    with open(node.log) as f:
        log = f.read()
    assert log.count("reauthentication=true") - before >= 2, "librdkafka re-authenticated each session"
    assert not [ln for ln in log.splitlines() if "SASL session expired" in ln and "reauth-producer" in ln]
