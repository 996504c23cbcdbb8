"""Fetch from the closest replica (KIP-392, issue 19) on a three-node cluster with racks: a
consumer with `client.rack` is pointed by the leader at the in-sync follower in its rack and
reads from it (that broker's samsa_follower_fetch_bytes grows, the leader's does not), and
keeps reading every record through a leader change."""
import shutil
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Cluster, free_port, wait_for

SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"


@pytest.fixture(scope="module")
def rack_cluster():
    admin_ports = {i: free_port() for i in (1, 2, 3)}
    per_node = {i: f"broker.rack=rack-{i}\nadmin.listener=127.0.0.1:{admin_ports[i]}\n"
                for i in admin_ports}
    c = Cluster(extra=f"replica.selector.class={SELECTOR}\n", per_node=per_node)
    c.admin_ports = admin_ports
    yield c
    try:
        c.stop()
    finally:
        shutil.rmtree(c.dir, ignore_errors=True)


def follower_bytes(cluster, node):
    url = f"http://127.0.0.1:{cluster.admin_ports[node]}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("samsa_follower_fetch_bytes_total "):
                return int(float(line.split()[1]))
    raise AssertionError("samsa_follower_fetch_bytes_total missing from /metrics")


def leader_of(admin, topic):
    md = admin.list_topics(topic, timeout=10).topics.get(topic)
    if md is None or md.error or 0 not in md.partitions:
        return None
    p = md.partitions[0]
    return p.leader if p.leader >= 0 and len(p.isrs) >= 2 else None


def produce(bootstrap, topic, values):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors = []
    for v in values:
        p.produce(topic, value=v, partition=0, on_delivery=lambda e, m: e and errors.append(e))
    p.flush(60)
    assert not errors, errors


def test_a_consumer_reads_from_the_replica_in_its_rack_and_follows_a_leader_change(rack_cluster, topic):
    c = rack_cluster
    admin = AdminClient({"bootstrap.servers": c.all})
    admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "2"})])[topic].result(30)
    leader = wait_for(lambda: leader_of(admin, topic), what="a leader with followers in sync")
    follower = next(n for n in (1, 2, 3) if n != leader)
    first = [b"before-%d" % i for i in range(200)]
    produce(c.all, topic, first)
    before = {n: follower_bytes(c, n) for n in (1, 2, 3)}
    consumer = Consumer({"bootstrap.servers": c.all, "group.id": "rack-" + topic,
                         "client.rack": f"rack-{follower}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                         "topic.metadata.refresh.interval.ms": 1000})
    got = {}

    def read_until(n, timeout=60):
        deadline = time.time() + timeout
        while len(got) < n and time.time() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                got[m.offset()] = m.value()
        return len(got) >= n

    try:
        consumer.subscribe([topic])
        assert read_until(len(first)), f"read {len(got)} of {len(first)}"
        after = {n: follower_bytes(c, n) for n in (1, 2, 3)}
        assert after[follower] > before[follower], "the follower in the consumer's rack served it"
        assert after[leader] == before[leader], "the leader served no records as a follower"
        # A leader change: the consumer goes on reading, whichever replica now serves it.
        c.kill(leader)
        wait_for(lambda: leader_of(admin, topic) not in (None, leader), timeout=60,
                 what="a new leader")
        second = [b"after-%d" % i for i in range(100)]
        produce(",".join(c.bootstrap(n) for n in (1, 2, 3) if n != leader), topic, second)
        assert read_until(len(first) + len(second)), f"read {len(got)}"
        assert [got[o] for o in sorted(got)] == first + second
        assert sorted(got) == list(range(len(first) + len(second)))
    finally:
        consumer.close()
        c.start(leader)
