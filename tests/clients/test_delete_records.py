"""DeleteRecords (KIP-107) through confluent-kafka's and kafka-python's admin clients on a
three-node cluster: the log start offset moves on the leader, followers adopt it (a new leader
after a SIGKILL starts at the same offset), and an offset past the high watermark is refused."""
import json
import os

import pytest
from confluent_kafka import KafkaException, Producer, TopicPartition as CkTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition

from conftest import kcat, wait_for


def leader_of(c, topic):
    md = json.loads(kcat("-b", c.all, "-L", "-J", "-t", topic))
    return md["topics"][0]["partitions"][0]["leader"]


def earliest(c, topic):
    out = kcat("-b", c.all, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "1", "-f", "%o\n", "-e")
    return int(out.split()[0])


def test_delete_records_moves_the_log_start_on_every_replica(failover_cluster, topic):
    c = failover_cluster
    ck = AdminClient({"bootstrap.servers": c.all})
    ck.create_topics([NewTopic(topic, 1, 3)])[topic].result(30)
    p = Producer({"bootstrap.servers": c.all, "acks": "all"})
    for i in range(1000):
        p.produce(topic, value=f"v{i}".encode())
    assert p.flush(60) == 0
    tp = CkTopicPartition(topic, 0, 400)
    deleted = ck.delete_records([tp])[tp].result(30)
    assert deleted.low_watermark == 400
    kp = KafkaAdminClient(bootstrap_servers=c.all)
    answer = kp.delete_records({TopicPartition(topic, 0): 600})
    assert answer[TopicPartition(topic, 0)]["low_watermark"] == 600, answer
    assert earliest(c, topic) == 600
    past = CkTopicPartition(topic, 0, 5000)
    with pytest.raises(KafkaException, match="OFFSET_OUT_OF_RANGE|out of range"):
        ck.delete_records([past])[past].result(30)
    kp.close()
    # Followers adopt the leader's log start on their next fetch; a new leader keeps it.
    def start_on_disk(node):
        path = os.path.join(c.dir, f"node{node}", f"{topic}-0", "log-start-offset")
        return open(path).read().strip() if os.path.exists(path) else None

    # The answer came once every live replica's log start reached 600 (Kafka's low watermark).
    assert [start_on_disk(n) for n in (1, 2, 3)] == ["600"] * 3
    victim = leader_of(c, topic)
    c.kill(victim)
    wait_for(lambda: leader_of(c, topic) not in (-1, victim), what="a new leader")
    assert earliest(c, topic) == 600
    c.start(victim)
