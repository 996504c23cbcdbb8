"""deploy/docker-compose.yml, as users run it: three containers from the samsa:latest image (built by
scripts/build-image.sh), clients on the host through localhost:19092-19094 and clients inside the
compose network through samsa-N:9092, one container crashing (SIGKILL of its process: the restart
policy brings it back) with every acknowledged record intact.
"""
import os
import shutil
import signal
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import sh, kcat, wait_for

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
COMPOSE = ["docker-compose", "-p", "samsacompose", "-f", os.path.join(ROOT, "deploy", "docker-compose.yml")]
NETWORK = "samsacompose_default"
HOST_BOOTSTRAP = "localhost:19092,localhost:19093,localhost:19094"
NODES = [f"samsacompose_samsa-{i}_1" for i in (1, 2, 3)]

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="needs a Docker engine")




def health(container):
    return sh("docker", "inspect", "-f", "{{.State.Health.Status}}", container, check=False).stdout.strip()


def inside(*args, input=None):
    """The samsa CLI in a container on the compose network (a client inside the network)."""
    return sh("docker", "run", "--rm", "-i", "--network", NETWORK, "samsa:latest", *args, input=input)


@pytest.fixture(scope="module")
def compose():
    sh(*COMPOSE, "down", "-v", check=False)
    sh(*COMPOSE, "up", "-d", timeout=300)
    try:
        wait_for(lambda: all(health(c) == "healthy" for c in NODES), 120, interval=1,
                 what="three healthy containers")
        yield
    finally:
        for c in NODES:
            logs = sh("docker", "logs", "--tail", "30", c, check=False)
            print(f"--- {c}\n{logs.stderr[-3000:]}")
        sh(*COMPOSE, "down", "-v", check=False, timeout=300)


def consume_all(bootstrap, topic, n, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-" + uuid.uuid4().hex[:6],
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    return got


def test_compose_cluster_serves_host_and_network_clients_and_survives_a_crash(compose):
    # Each side is told addresses it can reach.
    host_view = kcat("-L", "-b", "localhost:19092").decode()
    for port in (19092, 19093, 19094):
        assert f"at localhost:{port}" in host_view, host_view
    network_view = inside("cluster", "status", "--bootstrap-server", "samsa-1:9092").stdout
    for i in (1, 2, 3):
        assert f"samsa-{i}:9092" in network_view, network_view

    topic = "compose-" + uuid.uuid4().hex[:6]
    admin = AdminClient({"bootstrap.servers": HOST_BOOTSTRAP})
    for f in admin.create_topics([NewTopic(topic, 3, 3)]).values():
        f.result(timeout=60)
    p = Producer({"bootstrap.servers": HOST_BOOTSTRAP, "acks": "all", "enable.idempotence": True})
    from_host = [f"host-{i}" for i in range(100)]
    for v in from_host:
        p.produce(topic, value=v.encode())
    assert p.flush(60) == 0
    from_inside = [f"inside-{i}" for i in range(50)]
    inside("produce", topic, "--acks", "all", "--bootstrap-server", "samsa-1:9092,samsa-2:9092",
           input="\n".join(from_inside) + "\n")
    read_inside = inside("consume", topic, "--from-beginning", "--max-messages", "150",
                         "--bootstrap-server", "samsa-3:9092").stdout.split()
    assert sorted(read_inside) == sorted(from_host + from_inside)

    # A crash: SIGKILL of node 2's process (not `docker kill`, which the restart policy honours).
    restarts = int(sh("docker", "inspect", "-f", "{{.RestartCount}}", NODES[1]).stdout)
    pid = int(sh("docker", "inspect", "-f", "{{.State.Pid}}", NODES[1]).stdout)
    os.kill(pid, signal.SIGKILL)
    more = [f"during-{i}" for i in range(50)]
    for v in more:
        p.produce(topic, value=v.encode())
    assert p.flush(60) == 0, "acks=all writes go on with two of three nodes"
    wait_for(lambda: int(sh("docker", "inspect", "-f", "{{.RestartCount}}", NODES[1]).stdout) > restarts,
             60, interval=1, what="the restart policy to restart the container")
    wait_for(lambda: health(NODES[1]) == "healthy", 120, interval=1, what="the restarted node to be healthy")
    assert sorted(consume_all(HOST_BOOTSTRAP, topic, 200)) == sorted(from_host + from_inside + more)
