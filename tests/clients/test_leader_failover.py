"""librdkafka (confluent-kafka) across partition leader changes on a three-node cluster: RF=3,
min.insync.replicas=2, acks=all. The leader is SIGKILLed mid-stream; the producer and the
consumer ride through on their own, every acknowledged record is consumed exactly once, and the
consumer never rewinds (offsets only grow)."""
import json
import time

from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import kcat


def leader_of(cluster, topic):
    md = json.loads(kcat("-b", cluster.all, "-L", "-J", "-t", topic))
    return md["topics"][0]["partitions"][0]["leader"]


def test_consumer_and_producer_ride_through_a_leader_kill(failover_cluster, topic):
    c = failover_cluster
    a = AdminClient({"bootstrap.servers": c.all})
    a.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "2"})])[topic].result(30)
    p = Producer({"bootstrap.servers": c.all, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    acked = []

    def on_delivery(err, msg):
        if err is None:
            acked.append(msg.value().decode())

    def produce(lo, hi):
        for i in range(lo, hi):
            p.produce(topic, value=f"v{i}".encode(), on_delivery=on_delivery)
        assert p.flush(60) == 0

    consumer = Consumer({"bootstrap.servers": c.all, "group.id": "failover", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    seen = []

    def consume_until(n, limit_s=60):
        deadline = time.time() + limit_s
        while len(seen) < n and time.time() < deadline:
            m = consumer.poll(0.5)
            if m is None or m.error():
                continue
            seen.append((m.offset(), m.value().decode()))

    produce(0, 500)
    consume_until(250)
    victim = leader_of(c, topic)
    c.kill(victim)
    produce(500, 1000)  # the idempotent producer retries until the new leader takes it
    consume_until(len(acked))
    c.start(victim)
    consumer.close()
    offsets = [o for o, _ in seen]
    assert offsets == sorted(set(offsets)), "the consumer never rewound nor saw a record twice"
    assert [v for _, v in seen] == acked, "every acknowledged record, once, in order"
    assert len(acked) == 1000
    assert leader_of(c, topic) != -1
