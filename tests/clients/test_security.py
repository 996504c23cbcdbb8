"""TLS and SASL listeners, configured with Kafka's own keys, against real clients.

One node serves four Kafka listeners and an admin HTTP listener over TLS with a bearer token: SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; a SCRAM
user given at creation with --add-scram, others managed with AlterUserScramCredentials), SSL with required client certificates
mapped to principals by ssl.principal.mapping.rules (its key encrypted, opened with
ssl.key.password), SASL_PLAINTEXT (PLAIN, other users), and PLAINTEXT. Certificates come from
scripts/gen-certs.sh. Each refusal is checked for the client-visible error, and after each the
node still serves a well-behaved client; at the end the broker log holds no secret.
"""
import http.client
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from conftest import SAMSA_BIN, free_port, kcat, start_server

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
GEN_CERTS = os.path.join(ROOT, "scripts", "gen-certs.sh")
PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SECRETS = ["admin-secret", "alice-secret", "bob-secret", "localhost-key-password", "not-the-password",
           "root-secret", "carol-secret", "dora-secret", "admin-http-token-0123"]
ADMIN_TOKEN = "admin-http-token-0123"


class SecureNode:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="samsa-security-")
        self.certs = os.path.join(self.dir, "certs")
        subprocess.run([GEN_CERTS, self.certs, "localhost", "--client", "alice", "bob"], check=True,
                       capture_output=True)
        self.rogue = os.path.join(self.dir, "rogue-ca")
        subprocess.run([GEN_CERTS, self.rogue, "rogue", "--client", "mallory"], check=True, capture_output=True)
        self.ports = {name: free_port() for name in ("SASL_SSL", "SSL", "SASL_PLAINTEXT", "PLAINTEXT", "CONTROLLER")}
        self.admin_port = free_port()
        self.token_file = os.path.join(self.dir, "admin-token")
        with open(self.token_file, "w") as f:
            f.write(ADMIN_TOKEN + "\n")
        listeners = ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items())
        c = self.certs
        self.props = os.path.join(self.dir, "node.properties")
        with open(self.props, "w") as f:
            f.write(
                "node.id=1\nprocess.roles=broker,controller\n"
                f"controller.quorum.voters=1@127.0.0.1:{self.ports['CONTROLLER']}\n"
                f"listeners={listeners}\n"
                "listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
                "inter.broker.listener.name=PLAINTEXT\n"
                f"ssl.keystore.type=PEM\nssl.keystore.location={c}/localhost.pem\n"
                f"ssl.truststore.type=PEM\nssl.truststore.location={c}/ca.pem\n"
                "listener.name.ssl.ssl.client.auth=required\n"
                f"listener.name.ssl.ssl.keystore.location={c}/localhost.enc.pem\n"
                "listener.name.ssl.ssl.key.password=localhost-key-password\n"
                "listener.name.ssl.ssl.principal.mapping.rules=RULE:^CN=([^,]*),OU=clients,.*$/$1/L,DEFAULT\n"
                "sasl.enabled.mechanisms=PLAIN\n"
                "listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n"
                f'listener.name.sasl_ssl.plain.sasl.jaas.config={PLAIN} required username="admin" '
                'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";\n'
                f'listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN} required user_bob="bob-secret";\n'
                f"admin.listener=127.0.0.1:{self.admin_port}\n"
                "admin.listener.security.protocol=SSL\n"
                f"admin.listener.auth.token.file={self.token_file}\n"
                f"log.dirs={self.dir}/data\n")
        self.log = os.path.join(self.dir, "node.log")
        self.start()

    def start(self):
        self.proc = start_server(self.props, self.log, "--add-scram", "SCRAM-SHA-512=[name=root,password=root-secret]")

    def addr(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"

    def sasl_ssl(self, user="alice", password="alice-secret", mechanism="PLAIN"):
        return {"bootstrap.servers": self.addr("SASL_SSL"), "security.protocol": "SASL_SSL",
                "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password,
                "ssl.ca.location": f"{self.certs}/ca.pem"}

    def ssl(self, client="alice", certs=None):
        certs = certs or self.certs
        conf = {"bootstrap.servers": self.addr("SSL"), "security.protocol": "SSL",
                "ssl.ca.location": f"{self.certs}/ca.pem"}
        if client:
            conf.update({"ssl.certificate.location": f"{certs}/{client}.crt",
                         "ssl.key.location": f"{certs}/{client}.key"})
        return conf

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def node():
    n = SecureNode()
    yield n
    try:
        n.stop()
    finally:
        shutil.rmtree(n.dir, ignore_errors=True)


def round_trip(conf, topic, n=20):
    """Produces n records with confluent-kafka through `conf` and consumes them back."""
    p = Producer({**conf, "acks": "all"})
    for i in range(n):
        p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": "g-" + uuid.uuid4().hex[:8], "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert sorted(got) == sorted(f"v{i}" for i in range(n))


def refused(conf):
    """The errors a confluent-kafka client configured with `conf` reports when it tries to reach
    the cluster (which must fail)."""
    errors = []
    admin = AdminClient({**conf, "error_cb": errors.append, "socket.timeout.ms": 3000,
                         "reconnect.backoff.ms": 1000, "log_level": 2})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=4)
    admin.poll(1)  # error callbacks are served from poll
    return errors


def still_serves(node):
    md = AdminClient(node.sasl_ssl()).list_topics(timeout=10)
    assert 1 in md.brokers


def topic():
    return "sec-" + uuid.uuid4().hex[:10]


def admin(node):
    return AdminClient(node.sasl_ssl("admin", "admin-secret"))


def scram_logins(node, user, password):
    """Which SCRAM mechanisms `user` can log in with (a metadata request through each)."""
    ok = []
    for m in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        errors = []
        a = AdminClient({**node.sasl_ssl(user, password, m), "error_cb": errors.append, "log_level": 2})
        try:
            a.list_topics(timeout=3)
            ok.append(m)
        except KafkaException:
            a.poll(1)
            assert any("invalid credentials" in e.str() for e in errors), errors
    return ok


def test_confluent_kafka_over_sasl_ssl_plain(node):
    round_trip(node.sasl_ssl(), topic())
    md = AdminClient(node.sasl_ssl()).list_topics(timeout=10)
    assert md.brokers[1].port == node.ports["SASL_SSL"], "clients are told the SASL_SSL listener's address"


def test_confluent_kafka_over_ssl_with_a_client_certificate(node):
    round_trip(node.ssl("alice"), topic())


def test_kafka_python_over_sasl_ssl_and_sasl_plaintext(node):
    from kafka import KafkaConsumer, KafkaProducer
    t = topic()
    for conf in (
        dict(bootstrap_servers=node.addr("SASL_SSL"), security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
             sasl_plain_username="alice", sasl_plain_password="alice-secret", ssl_cafile=f"{node.certs}/ca.pem"),
        dict(bootstrap_servers=node.addr("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
             sasl_mechanism="PLAIN", sasl_plain_username="bob", sasl_plain_password="bob-secret"),
    ):
        p = KafkaProducer(acks="all", **conf)
        for i in range(5):
            p.send(t, value=f"{conf['security_protocol']}-{i}".encode()).get(timeout=30)
        p.close()
    c = KafkaConsumer(t, auto_offset_reset="earliest", consumer_timeout_ms=5000, bootstrap_servers=node.addr("SSL"),
                      security_protocol="SSL", ssl_cafile=f"{node.certs}/ca.pem",
                      ssl_certfile=f"{node.certs}/bob.crt", ssl_keyfile=f"{node.certs}/bob.key")
    got = sorted(m.value.decode() for m in c)
    c.close()
    assert got == sorted([f"SASL_SSL-{i}" for i in range(5)] + [f"SASL_PLAINTEXT-{i}" for i in range(5)])


def test_aiokafka_over_sasl_ssl(node):
    import asyncio
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context
    t = topic()

    async def run():
        conf = dict(bootstrap_servers=node.addr("SASL_SSL"), security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                    sasl_plain_username="admin", sasl_plain_password="admin-secret",
                    ssl_context=create_ssl_context(cafile=f"{node.certs}/ca.pem"))
        p = AIOKafkaProducer(acks="all", **conf)
        await p.start()
        try:
            for i in range(5):
                await p.send_and_wait(t, f"a{i}".encode())
        finally:
            await p.stop()
        c = AIOKafkaConsumer(t, auto_offset_reset="earliest", **conf)
        await c.start()
        got = []
        try:
            while len(got) < 5:
                batch = await asyncio.wait_for(c.getmany(timeout_ms=1000), 30)
                for msgs in batch.values():
                    got.extend(m.value.decode() for m in msgs)
        finally:
            await c.stop()
        return got

    assert sorted(asyncio.run(run())) == [f"a{i}" for i in range(5)]


def test_kcat_over_sasl_ssl_ssl_and_the_v0_handshake(node):
    t = topic()
    sasl = ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice",
            "-X", "sasl.password=alice-secret", "-X", f"ssl.ca.location={node.certs}/ca.pem"]
    kcat("-P", "-b", node.addr("SASL_SSL"), "-t", t, *sasl, input=b"one\ntwo\n")
    tls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={node.certs}/ca.pem",
           "-X", f"ssl.certificate.location={node.certs}/bob.crt", "-X", f"ssl.key.location={node.certs}/bob.key"]
    out = kcat("-C", "-b", node.addr("SSL"), "-t", t, "-o", "beginning", "-c", "2", "-e", *tls)
    assert out.split() == [b"one", b"two"]
    # Without ApiVersions librdkafka uses SaslHandshake v0 and raw SASL tokens (0.10's framing).
    old = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.10.0"]
    kcat("-P", "-b", node.addr("SASL_PLAINTEXT"), "-t", t, "-X", "security.protocol=SASL_PLAINTEXT",
         "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=bob", "-X", "sasl.password=bob-secret", *old,
         input=b"three\n")
    out = kcat("-C", "-b", node.addr("SASL_SSL"), "-t", t, "-o", "beginning", "-c", "3", "-e", *sasl)
    assert out.split() == [b"one", b"two", b"three"]


def test_scram_users_are_created_used_deleted_and_survive_a_restart(node):
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                       UserScramCredentialUpsertion)
    # The user the cluster was created with (--add-scram).
    assert scram_logins(node, "root", "root-secret") == ["SCRAM-SHA-512"]
    a = admin(node)
    futures = a.alter_user_scram_credentials([
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"carol-secret"),
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"carol-secret"),
    ])
    futures["carol"].result(timeout=10)
    described = {u: f.result(timeout=10) for u, f in a.describe_user_scram_credentials(["carol", "root"]).items()}
    infos = {(i.mechanism, i.iterations) for i in described["carol"].scram_credential_infos}
    assert [(i.mechanism, i.iterations) for i in described["root"].scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_512, 4096)]
    everyone = a.describe_user_scram_credentials().result(timeout=10)
    assert {"carol", "root"} <= set(everyone)
    assert infos == {(ScramMechanism.SCRAM_SHA_256, 4096), (ScramMechanism.SCRAM_SHA_512, 8192)}
    assert scram_logins(node, "carol", "carol-secret") == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    assert scram_logins(node, "carol", "not-the-password") == []
    # Every client authenticates with SCRAM: confluent-kafka, kafka-python, aiokafka, kcat.
    t = topic()
    round_trip(node.sasl_ssl("carol", "carol-secret", "SCRAM-SHA-256"), t, n=5)
    from kafka import KafkaConsumer
    c = KafkaConsumer(t, auto_offset_reset="earliest", consumer_timeout_ms=5000, bootstrap_servers=node.addr("SASL_SSL"),
                      security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="carol",
                      sasl_plain_password="carol-secret", ssl_cafile=f"{node.certs}/ca.pem")
    assert sorted(m.value for m in c) == [f"v{i}".encode() for i in range(5)]
    c.close()
    out = kcat("-C", "-b", node.addr("SASL_SSL"), "-t", t, "-o", "beginning", "-c", "5", "-e",
               "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", "sasl.username=carol",
               "-X", "sasl.password=carol-secret", "-X", f"ssl.ca.location={node.certs}/ca.pem")
    assert sorted(out.split()) == [f"v{i}".encode() for i in range(5)]
    import asyncio
    from aiokafka import AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    async def aio():
        p = AIOKafkaProducer(bootstrap_servers=node.addr("SASL_SSL"), security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="root",
                             sasl_plain_password="root-secret",
                             ssl_context=create_ssl_context(cafile=f"{node.certs}/ca.pem"))
        await p.start()
        try:
            await p.send_and_wait(t, b"from-aiokafka")
        finally:
            await p.stop()
    asyncio.run(aio())
    # Refusals, each with Kafka's code, per user.
    bad = a.alter_user_scram_credentials([
        UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"x"),
        UserScramCredentialDeletion("erin", ScramMechanism.SCRAM_SHA_256),
        UserScramCredentialUpsertion("frank", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"x"),
        UserScramCredentialDeletion("frank", ScramMechanism.SCRAM_SHA_256),
    ])
    for user, code in (("dave", "UNACCEPTABLE_CREDENTIAL"), ("erin", "RESOURCE_NOT_FOUND"),
                       ("frank", "DUPLICATE_RESOURCE")):
        with pytest.raises(KafkaException) as e:
            bad[user].result(timeout=10)
        assert e.value.args[0].name() == code, (user, e.value)
    with pytest.raises(KafkaException) as e:
        a.describe_user_scram_credentials(["nobody"])["nobody"].result(timeout=10)
    assert e.value.args[0].name() == "RESOURCE_NOT_FOUND"
    # Deleting one mechanism leaves the other; both survive a restart, as does the bootstrap user.
    a.alter_user_scram_credentials([UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)])["carol"].result(10)
    assert scram_logins(node, "carol", "carol-secret") == ["SCRAM-SHA-512"]
    node.stop()
    node.start()
    assert scram_logins(node, "carol", "carol-secret") == ["SCRAM-SHA-512"]
    assert scram_logins(node, "root", "root-secret") == ["SCRAM-SHA-512"]


def test_a_wrong_password_and_an_unknown_user_are_refused(node):
    for user, password in (("alice", "not-the-password"), ("nobody", "alice-secret")):
        errors = refused(node.sasl_ssl(user, password))
        assert any(e.code() == KafkaError._AUTHENTICATION and "Invalid username or password" in e.str()
                   for e in errors), errors
        still_serves(node)


def test_an_unknown_mechanism_is_refused_with_the_enabled_list(node):
    # SASL_PLAINTEXT enables PLAIN only.
    errors = refused({"bootstrap.servers": node.addr("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
                      "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "bob", "sasl.password": "bob-secret"})
    assert any("PLAIN" in e.str() and "SCRAM-SHA-256" in e.str() for e in errors), errors
    still_serves(node)


def test_a_missing_or_untrusted_client_certificate_is_refused(node):
    for conf in (node.ssl(client=None), node.ssl("mallory", certs=node.rogue)):
        errors = refused(conf)
        assert errors, "the client saw the handshake fail"
        still_serves(node)
    # A SASL_SSL client that does not trust the node's CA fails too.
    errors = refused({**node.sasl_ssl(), "ssl.ca.location": f"{node.rogue}/ca.pem"})
    assert any(e.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
               for e in errors), errors


def request(api_key, version, body=b"", correlation_id=7):
    header = struct.pack(">hhih", api_key, version, correlation_id, 4) + b"test"
    msg = header + body
    return struct.pack(">i", len(msg)) + msg


def read_frame(s):
    def exactly(n):
        out = b""
        while len(out) < n:
            chunk = s.recv(n - len(out))
            if not chunk:
                return None
            out += chunk
        return out
    size = exactly(4)
    if size is None:
        return None
    return exactly(struct.unpack(">i", size)[0])


def kstring(s):
    return struct.pack(">h", len(s)) + s


def test_plaintext_bytes_on_a_tls_port_close_that_connection_only(node):
    with socket.create_connection(("127.0.0.1", node.ports["SSL"]), timeout=10) as s:
        s.sendall(request(18, 0))
        answer = s.recv(4096)
        # No Kafka answer: at most a TLS alert record (content type 21), then the close.
        assert answer == b"" or answer[0] == 21, answer
    still_serves(node)


def test_only_api_versions_and_sasl_are_served_before_authentication(node):
    with socket.create_connection(("127.0.0.1", node.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(request(18, 0))
        answer = read_frame(s)
        assert answer is not None and struct.unpack(">ih", answer[:6]) == (7, 0), "ApiVersions is answered"
        s.sendall(request(3, 1, struct.pack(">i", -1)))  # Metadata v1, all topics
        assert read_frame(s) is None, "Metadata before authentication closes the connection"
    # SaslHandshake v1 then SaslAuthenticate with the right password, then Metadata works; a
    # second handshake gets ILLEGAL_SASL_STATE.
    with socket.create_connection(("127.0.0.1", node.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(request(17, 1, kstring(b"PLAIN")))
        answer = read_frame(s)
        assert struct.unpack(">ih", answer[:6]) == (7, 0)
        token = b"\0bob\0bob-secret"
        s.sendall(request(36, 1, struct.pack(">i", len(token)) + token, correlation_id=8))
        answer = read_frame(s)
        assert struct.unpack(">ih", answer[:6]) == (8, 0), answer
        s.sendall(request(3, 1, struct.pack(">i", -1), correlation_id=9))
        assert struct.unpack(">i", read_frame(s)[:4]) == (9,)
        s.sendall(request(17, 1, kstring(b"PLAIN"), correlation_id=10))
        assert struct.unpack(">ih", read_frame(s)[:6]) == (10, 34), "ILLEGAL_SASL_STATE"
    # A wrong password, an empty one, another authorization id, a malformed token: each gets
    # SASL_AUTHENTICATION_FAILED over SaslAuthenticate, then the close.
    for token, says in ((b"\0bob\0not-the-password", b"Invalid username or password"),
                        (b"\0bob\0", b"password not specified"),
                        (b"alice\0bob\0bob-secret", b"authorization id"),
                        (b"bob-secret", b"expected 3 tokens")):
        with socket.create_connection(("127.0.0.1", node.ports["SASL_PLAINTEXT"]), timeout=10) as s:
            s.sendall(request(17, 1, kstring(b"PLAIN")))
            read_frame(s)
            s.sendall(request(36, 0, struct.pack(">i", len(token)) + token, correlation_id=8))
            answer = read_frame(s)
            assert struct.unpack(">ih", answer[:6]) == (8, 58), answer
            assert says in answer and b"not-the-password" not in answer, answer
            assert read_frame(s) is None
    # A PLAINTEXT listener answers SaslHandshake with ILLEGAL_SASL_STATE.
    with socket.create_connection(("127.0.0.1", node.ports["PLAINTEXT"]), timeout=10) as s:
        s.sendall(request(17, 1, kstring(b"PLAIN")))
        assert struct.unpack(">ih", read_frame(s)[:6]) == (7, 34)
    still_serves(node)


def samsa_cli(node, config, *args, stdin=None):
    """Runs a samsa client command with `config` (Kafka client properties) as --command-config."""
    path = os.path.join(node.dir, "command.properties")
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in config.items()))
    return subprocess.run([SAMSA_BIN, *args, "--command-config", path], input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_samsa_tools_manage_scram_users_over_sasl_ssl_with_command_config(node):
    addr = node.addr("SASL_SSL")
    ca = f"{node.certs}/ca.pem"
    admin_conf = {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                  "sasl.jaas.config": f'{PLAIN} required username="admin" password="admin-secret";',
                  "ssl.truststore.type": "PEM", "ssl.truststore.location": ca}
    # The password comes from stdin; both mechanisms, Kafka's iteration bounds.
    r = samsa_cli(node, admin_conf, "user", "create", "dora", "--mechanism", "SCRAM-SHA-256", "--mechanism",
                  "SCRAM-SHA-512", "--iterations", "8192", "--bootstrap-server", addr, stdin="dora-secret\n")
    assert r.returncode == 0, r.stderr
    assert "Created SCRAM-SHA-512 credential for user 'dora'" in r.stdout
    assert scram_logins(node, "dora", "dora-secret") == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    r = samsa_cli(node, admin_conf, "user", "list", "--bootstrap-server", addr)
    assert r.returncode == 0, r.stderr
    rows = {tuple(line.split()) for line in r.stdout.splitlines()[1:]}
    assert {("dora", "SCRAM-SHA-256", "8192"), ("dora", "SCRAM-SHA-512", "8192"),
            ("root", "SCRAM-SHA-512", "4096")} <= rows, r.stdout
    # The new user logs the tools in with SCRAM (sasl.username/sasl.password form).
    dora = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "dora",
            "sasl.password": "dora-secret", "ssl.ca.location": ca}
    t = topic()
    r = samsa_cli(node, dora, "topic", "create", t, "--partitions", "1", "--bootstrap-server", addr)
    assert r.returncode == 0, r.stderr
    r = samsa_cli(node, dora, "produce", t, "--bootstrap-server", addr, stdin="one\ntwo\n")
    assert r.returncode == 0, r.stderr
    r = samsa_cli(node, dora, "consume", t, "--from-beginning", "--max-messages", "2", "--bootstrap-server", addr)
    assert r.returncode == 0 and r.stdout.split() == ["one", "two"], (r.stdout, r.stderr)
    # Refusals: a wrong password, a bad iteration count, no CA; none prints a secret.
    for conf, args, expected in (
        ({**dora, "sasl.password": "not-the-password"}, ("topic", "list"), "authentication failed"),
        (admin_conf, ("user", "create", "eve", "--password", "dora-secret", "--iterations", "100"), "4096"),
        ({k: v for k, v in dora.items() if k != "ssl.ca.location"}, ("topic", "list"), "ssl.truststore.location"),
        ({**dora, "security.protocol": "SASL_SSL2"}, ("topic", "list"), "SASL_SSL"),
    ):
        r = samsa_cli(node, conf, *args, "--bootstrap-server", addr)
        assert r.returncode != 0, (args, r.stdout)
        assert expected in r.stderr.lower() or expected in r.stderr, (expected, r.stderr)
        for secret in SECRETS:
            assert secret not in r.stderr + r.stdout, (secret, r.stderr)
    # Deleting with the tool: every mechanism of the user goes, and logins stop.
    r = samsa_cli(node, admin_conf, "user", "delete", "dora", "--bootstrap-server", addr)
    assert r.returncode == 0, r.stderr
    assert scram_logins(node, "dora", "dora-secret") == []
    r = samsa_cli(node, admin_conf, "user", "delete", "dora", "--bootstrap-server", addr)
    assert r.returncode != 0 and "ResourceNotFound (91)" in r.stderr, r.stderr


def test_samsa_tools_open_an_encrypted_client_key_with_ssl_key_password(node):
    # alice's certificate with its key encrypted (PKCS#8, PBES2), as a Kafka client's key store.
    conf = {"security.protocol": "SSL", "ssl.truststore.type": "PEM", "ssl.truststore.location": f"{node.certs}/ca.pem",
            "ssl.keystore.type": "PEM", "ssl.keystore.location": f"{node.certs}/alice.enc.pem",
            "ssl.key.password": "alice-key-password"}
    r = samsa_cli(node, conf, "topic", "list", "--bootstrap-server", node.addr("SSL"))
    assert r.returncode == 0, r.stderr
    for wrong, says in (({**conf, "ssl.key.password": "not-the-password"}, "is ssl.key.password right?"),
                        ({k: v for k, v in conf.items() if k != "ssl.key.password"}, "set ssl.key.password")):
        r = samsa_cli(node, wrong, "topic", "list", "--bootstrap-server", node.addr("SSL"))
        assert r.returncode != 0 and says in r.stderr, r.stderr
        assert "not-the-password" not in r.stderr + r.stdout


def test_describe_configs_shows_security_keys_and_hides_secrets(node):
    """As Kafka: a PASSWORD key (ssl.key.password, sasl.jaas.config) is described with a null value and
    is_sensitive; the other ssl.*/sasl.* keys are shown."""
    from confluent_kafka.admin import ConfigResource, ResourceType
    a = admin(node)
    res = ConfigResource(ResourceType.BROKER, "1")
    configs = a.describe_configs([res])[res].result(timeout=10)
    jaas = configs["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert jaas.is_sensitive and jaas.value is None
    key_password = configs["listener.name.ssl.ssl.key.password"]
    assert key_password.is_sensitive and key_password.value is None
    mechanisms = configs["listener.name.sasl_ssl.sasl.enabled.mechanisms"]
    assert not mechanisms.is_sensitive
    assert mechanisms.value == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    assert configs["ssl.keystore.location"].value == f"{node.certs}/localhost.pem"
    for c in configs.values():
        assert not any(secret in (c.value or "") for secret in SECRETS), c.name


def test_misconfigured_tls_stops_the_node_with_a_message_and_no_secret(node):
    base = open(node.props).read()
    cases = [
        ("listener.name.ssl.ssl.key.password=localhost-key-password",
         "listener.name.ssl.ssl.key.password=not-the-password", "ssl.key.password"),
        (f"listener.name.ssl.ssl.keystore.location={node.certs}/localhost.enc.pem",
         f"listener.name.ssl.ssl.keystore.location={node.certs}/missing.pem", "missing.pem"),
        ("ssl.keystore.type=PEM", "ssl.keystore.type=JKS", "keytool"),
        ("sasl.enabled.mechanisms=PLAIN", "sasl.enabled.mechanisms=GSSAPI", "GSSAPI"),
        ("admin.listener.security.protocol=SSL", "admin.listener.security.protocol=SASL_SSL",
         "PLAINTEXT or SSL"),
        (f"admin.listener.auth.token.file={node.token_file}",
         f"admin.listener.auth.token.file={node.dir}/no-token", "no-token"),
    ]
    for old, new, expected in cases:
        assert old in base, old
        path = os.path.join(node.dir, "bad.properties")
        with open(path, "w") as f:
            # Other ports, so the running node is not disturbed.
            text = base.replace(old, new)
            for p in [*node.ports.values(), node.admin_port]:
                text = text.replace(f":{p}", f":{free_port()}")
            f.write(text.replace(f"log.dirs={node.dir}/data", f"log.dirs={node.dir}/bad-data"))
        r = subprocess.run([SAMSA_BIN, "server", path], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, r.stdout
        assert expected in r.stderr, r.stderr
        for secret in SECRETS:
            assert secret not in r.stderr, (secret, r.stderr)


def admin_get(node, path, token=None, cafile=None):
    """GET `path` from the admin listener over TLS: (status, body, WWW-Authenticate)."""
    ctx = ssl.create_default_context(cafile=cafile or f"{node.certs}/ca.pem")
    conn = http.client.HTTPSConnection("localhost", node.admin_port, context=ctx, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        r = conn.getresponse()
        return r.status, r.read().decode(), r.getheader("WWW-Authenticate")
    finally:
        conn.close()


def test_the_admin_listener_serves_tls_and_wants_the_token_everywhere_but_healthz(node):
    assert admin_get(node, "/healthz")[:2] == (200, "ok\n"), "liveness needs no token"
    status, body, challenge = admin_get(node, "/readyz")
    assert status == 401 and challenge.startswith("Bearer"), (status, body, challenge)
    assert ADMIN_TOKEN not in body
    assert admin_get(node, "/metrics")[0] == 401
    assert admin_get(node, "/metrics", token="wrong-token")[0] == 401
    assert admin_get(node, "/metrics", token=ADMIN_TOKEN[:-1])[0] == 401, "a prefix is refused"
    assert admin_get(node, "/readyz", token=ADMIN_TOKEN)[:2] == (200, "ready\n")
    status, body, _ = admin_get(node, "/metrics", token=ADMIN_TOKEN)
    assert status == 200 and "samsa_raft_term" in body
    # A CA that did not sign the listener's certificate: the client refuses the handshake.
    with pytest.raises(ssl.SSLError):
        admin_get(node, "/healthz", cafile=f"{node.rogue}/ca.pem")
    # Plain HTTP on the TLS port gets no HTTP answer, and the listener goes on serving.
    with socket.create_connection(("127.0.0.1", node.admin_port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(64)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/"), answer
    assert admin_get(node, "/healthz")[0] == 200


def test_samsa_health_speaks_tls_and_sends_the_token(node):
    health = [SAMSA_BIN, "health", "--admin", f"localhost:{node.admin_port}"]
    ca = ["--cacert", f"{node.certs}/ca.pem"]
    r = subprocess.run(health + ca + ["--token-file", node.token_file], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "ready" in r.stdout, (r.stdout, r.stderr)
    r = subprocess.run(health + ca + ["--live"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout, r.stderr)
    r = subprocess.run(health + ca, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "--token-file" in r.stderr, (r.stdout, r.stderr)
    r = subprocess.run(health + ["--token-file", node.token_file], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "--cacert" in r.stderr, (r.stdout, r.stderr)
    r = subprocess.run(health + ["--cacert", f"{node.rogue}/ca.pem", "--token-file", node.token_file],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "TLS" in r.stderr, (r.stdout, r.stderr)
    for out in (r.stdout, r.stderr):
        assert ADMIN_TOKEN not in out


def test_zz_no_secret_reached_the_broker_log(node):
    log = open(node.log).read()
    for secret in SECRETS:
        assert secret not in log, secret
    assert "authentication failed" in log.lower(), "refusals are logged"
