"""deploy/docker-compose.secure.yml over deploy/docker-compose.yml, as its header says to run it:
certificates from scripts/gen-certs.sh, SASL_SSL for clients (SCRAM-SHA-512 user from
--add-scram, PLAIN users from the JAAS lines) and mutual TLS between the containers on the
CONTROLLER listener. Host clients produce and consume with acks=all; a wrong password and a
PLAINTEXT client are refused.
"""
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import sh, wait_for

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DEPLOY = os.path.join(ROOT, "deploy")
PROJECT = "samsasecure"
COMPOSE = ["docker-compose", "-p", PROJECT, "-f", os.path.join(DEPLOY, "docker-compose.yml"),
           "-f", os.path.join(DEPLOY, "docker-compose.secure.yml")]
NODES = [f"{PROJECT}_samsa-{i}_1" for i in (1, 2, 3)]
BOOTSTRAP = "localhost:19092,localhost:19093,localhost:19094"

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="needs a Docker engine")


def health(container):
    return sh("docker", "inspect", "-f", "{{.State.Health.Status}}", container, check=False).stdout.strip()


@pytest.fixture(scope="module")
def secure():
    certs = tempfile.mkdtemp(prefix="samsa-compose-certs-")
    subprocess.run([os.path.join(ROOT, "scripts", "gen-certs.sh"), certs, "samsa-1", "samsa-2", "samsa-3"],
                   check=True, capture_output=True)
    os.chmod(certs, 0o755)
    sh("chown", "-R", "10001", certs)
    env = {**os.environ, "SAMSA_CERTS": certs}
    sh(*COMPOSE, "down", "-v", check=False, env=env)
    sh(*COMPOSE, "up", "-d", timeout=300, env=env)
    try:
        wait_for(lambda: all(health(c) == "healthy" for c in NODES), 120, interval=1,
                 what="three healthy containers")
        yield certs
    finally:
        for c in NODES:
            logs = sh("docker", "logs", "--tail", "30", c, check=False)
            print(f"--- {c}\n{logs.stderr[-3000:]}")
        sh(*COMPOSE, "down", "-v", check=False, timeout=300, env=env)
        shutil.rmtree(certs, ignore_errors=True)


def conf(certs, user="admin", password="admin-secret", mechanism="SCRAM-SHA-512"):
    return {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_SSL", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password, "ssl.ca.location": f"{certs}/ca.pem"}


def test_the_secure_compose_cluster_serves_sasl_ssl_clients_and_refuses_the_rest(secure):
    topic = "secure-" + uuid.uuid4().hex[:8]
    admin = AdminClient(conf(secure))
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=60)
    values = [f"v{i}" for i in range(100)]
    p = Producer({**conf(secure, "app", "app-secret", "PLAIN"), "acks": "all"})
    failed = []
    for v in values:
        p.produce(topic, value=v.encode(), on_delivery=lambda err, m: err and failed.append(err))
    assert p.flush(60) == 0 and not failed, failed[:3]
    c = Consumer({**conf(secure), "group.id": "g-" + uuid.uuid4().hex[:6], "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    for _ in range(240):
        if len(got) >= len(values):
            break
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert sorted(got) == sorted(values)
    # A wrong password and a client without TLS+SASL get nothing.
    for bad in (conf(secure, "admin", "wrong"), {"bootstrap.servers": BOOTSTRAP}):
        with pytest.raises(KafkaException):
            AdminClient({**bad, "log_level": 0}).list_topics(timeout=5)
