"""Go clients from Debian's packages (issue 19), built in GOPATH mode against /usr/share/gocode:
Sarama 1.22 at the config.Version values old applications pin, segmentio/kafka-go 0.2.1 and
confluent-kafka-go, each driving a broker as an application would (tests/go/*/main.go); and
Burrow 1.2.1, the consumer-lag monitor, watching a group on the three-node cluster."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from conftest import free_port, wait_for

GO_SOURCES = os.path.join(os.path.dirname(__file__), "..", "go")


@pytest.fixture(scope="module")
def go_bin():
    """Builds each check program once; returns a function naming its binary."""
    out = tempfile.mkdtemp(prefix="samsa-go-")
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
               GOCACHE=os.path.join(out, "cache"))
    built = {}

    def binary(name):
        if name not in built:
            path = os.path.join(out, name)
            src = os.path.join(GO_SOURCES, name, "main.go")
            r = subprocess.run(["go", "build", "-tags", "dynamic", "-o", path, src], env=env,
                               capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, f"go build {name} failed:\n{r.stderr}"
            built[name] = path
        return built[name]

    yield binary
    shutil.rmtree(out, ignore_errors=True)


def run_check(args, timeout=180):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and r.stdout.strip().endswith("PASS"), r.stdout + r.stderr
    return r.stdout


# Sarama's config.Version picks the request versions: 0.10.2 sends Produce v2 / Fetch v3
# (message format v1), OffsetCommit v1 and CreateTopics v1; 0.11 the first v2 batches and
# DescribeConfigs v0; 2.2.0 is the newest this Sarama knows (and zstd from 2.1).
SARAMA_VERSIONS = ["0.10.2.0", "0.11.0.0", "1.0.0", "2.0.0", "2.2.0"]


@pytest.mark.parametrize("version", SARAMA_VERSIONS)
def test_sarama(broker, topic, go_bin, version):
    out = run_check([go_bin("sarama-check"), "-brokers", broker.bootstrap, "-version", version,
                     "-topic", topic])
    assert "ok consumer group" in out and "ok committed offsets" in out


def test_kafka_go(broker, topic, go_bin):
    out = run_check([go_bin("kafkago-check"), "-broker", broker.bootstrap, "-topic", topic])
    assert "ok Reader after commit" in out


def test_confluent_kafka_go(broker, topic, go_bin):
    out = run_check([go_bin("confluent-check"), "-brokers", broker.bootstrap, "-topic", topic])
    assert "ok consumer group" in out


ZOOKEEPER_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"


def http_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_burrow_sees_topic_offsets_and_group_lag_on_three_nodes(cluster, topic):
    """Burrow (kafka-version 0.10.0: Metadata v0, ListOffsets v0, and Fetch v2 reading
    __consumer_offsets in message format v1) lists the topic's end offsets and the group's
    committed offsets and lag, as it does against Kafka. ZooKeeper runs only because Burrow
    needs it for itself."""
    work = tempfile.mkdtemp(prefix="samsa-burrow-")
    zk_port, http_port = free_port(), free_port()
    procs = []
    try:
        with open(os.path.join(work, "zoo.cfg"), "w") as f:
            f.write(f"tickTime=2000\ndataDir={work}/zk\nclientPort={zk_port}\n"
                    "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
        procs.append(subprocess.Popen(
            ["java", "-cp", ZOOKEEPER_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
             os.path.join(work, "zoo.cfg")],
            stdout=open(os.path.join(work, "zk.log"), "w"), stderr=subprocess.STDOUT))
        servers = ", ".join(f'"{cluster.bootstrap(i)}"' for i in cluster.ports)
        with open(os.path.join(work, "burrow.toml"), "w") as f:
            f.write(f"""[general]
pidfile="{work}/burrow.pid"
[logging]
level="info"
[zookeeper]
servers=["127.0.0.1:{zk_port}"]
timeout=6
root-path="/burrow"
[client-profile.old]
client-id="burrow-check"
kafka-version="0.10.0"
[cluster.samsa]
class-name="kafka"
servers=[{servers}]
client-profile="old"
topic-refresh=2
offset-refresh=2
[consumer.samsa]
class-name="kafka"
cluster="samsa"
servers=[{servers}]
client-profile="old"
offsets-topic="__consumer_offsets"
start-latest=false
[httpserver.default]
address="127.0.0.1:{http_port}"
[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
""")
        admin = KafkaAdminClient(bootstrap_servers=cluster.all)
        admin.create_topics([NewTopic(topic, 3, 3)])
        admin.close()
        p = KafkaProducer(bootstrap_servers=cluster.all, acks="all")
        for partition in range(3):
            for _ in range(10 + partition):
                p.send(topic, value=b"x", partition=partition)
        p.flush(30)
        p.close()
        group = "burrow-" + topic
        c = KafkaConsumer(bootstrap_servers=cluster.all, group_id=group, enable_auto_commit=False)
        c.commit({TopicPartition(topic, i): OffsetAndMetadata(4 + i, "", -1) for i in range(3)})
        c.close()
        wait_for(lambda: zk_ready(zk_port), timeout=60, what="ZooKeeper answers")
        procs.append(subprocess.Popen(["Burrow", "--config-dir", work],
                                      stdout=open(os.path.join(work, "burrow.log"), "w"),
                                      stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{http_port}/v3/kafka/samsa"

        def offsets():
            try:
                return http_json(f"{base}/topic/{topic}").get("offsets")
            except OSError:
                return None
        wait_for(lambda: offsets() == [10, 11, 12], timeout=60, what="Burrow lists the end offsets")

        def lag():
            try:
                status = http_json(f"{base}/consumer/{group}/lag").get("status") or {}
            except OSError:
                return None
            parts = {p["partition"]: (p["end"]["offset"], p["current_lag"])
                     for p in status.get("partitions") or []}
            return parts, status.get("totallag")
        wait_for(lambda: lag() == ({0: (4, 6), 1: (5, 6), 2: (6, 6)}, 18), timeout=60,
                 what="Burrow shows the group's committed offsets and lag")
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def zk_ready(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"srvr")
            return s.recv(64).startswith(b"Zookeeper")
    except OSError:
        return False
