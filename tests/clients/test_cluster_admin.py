"""Real clients against a three-node samsa cluster: kcat -L and admin calls from confluent-kafka,
kafka-python and aiokafka, each sent to a different node, all seeing one cluster."""
import asyncio
import json
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic as AioNewTopic
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic

from conftest import kcat


def eventually(check, timeout_s=10):
    """Other brokers apply a committed change within moments (as in Kafka); wait, bounded."""
    deadline = time.time() + timeout_s
    while not check():
        assert time.time() < deadline, "not visible on every broker in time"
        time.sleep(0.05)


@pytest.mark.parametrize("node", [1, 2, 3])
def test_kcat_metadata_from_every_node(cluster, node):
    md = json.loads(kcat("-b", cluster.bootstrap(node), "-L", "-J"))
    assert sorted(b["id"] for b in md["brokers"]) == [1, 2, 3]
    assert md["controllerid"] in (1, 2, 3)


@pytest.mark.parametrize("node", [1, 2, 3])
def test_confluent_kafka_admin_on_any_node(cluster, node, topic):
    a = AdminClient({"bootstrap.servers": cluster.bootstrap(node)})
    a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])[topic].result(30)
    md = a.list_topics(timeout=10)
    assert sorted(md.brokers) == [1, 2, 3]
    parts = md.topics[topic].partitions
    assert sorted(p.leader for p in parts.values()) == [1, 2, 3], "one leader per broker"
    assert all(sorted(p.replicas) == [1, 2, 3] for p in parts.values())
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    assert a.describe_configs([res])[res].result(30)["cleanup.policy"].value == "delete"
    a.create_partitions([NewPartitions(topic, 6)])[topic].result(30)
    # Another node answers from the same replicated metadata.
    other = AdminClient({"bootstrap.servers": cluster.bootstrap(node % 3 + 1)})
    eventually(lambda: len(other.list_topics(timeout=10).topics[topic].partitions) == 6)
    a.delete_topics([topic])[topic].result(30)
    eventually(lambda: topic not in other.list_topics(timeout=10).topics)


@pytest.mark.parametrize("node", [1, 2, 3])
def test_kafka_python_admin_on_any_node(cluster, node, topic):
    a = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(node))
    a.create_topics([KpNewTopic(topic, num_partitions=2, replication_factor=2)])
    (desc,) = a.describe_topics([topic])
    assert len(desc["partitions"]) == 2 and all(len(p["replica_nodes"]) == 2 for p in desc["partitions"]), desc
    c = a.describe_cluster()
    assert sorted(b["broker_id"] for b in c["brokers"]) == [1, 2, 3], c
    a.delete_topics([topic])
    a.close()


@pytest.mark.parametrize("node", [1, 2, 3])
def test_aiokafka_admin_on_any_node(cluster, node, topic):
    async def go():
        a = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap(node))
        await a.start()
        try:
            await a.create_topics([AioNewTopic(topic, num_partitions=3, replication_factor=1)])
            assert topic in await a.list_topics()
            await a.delete_topics([topic])
            deadline = time.time() + 10
            while topic in await a.list_topics():
                assert time.time() < deadline, "deletion not visible in time"
                await asyncio.sleep(0.05)
        finally:
            await a.close()

    asyncio.run(asyncio.wait_for(go(), 60))


def test_describe_topic_partitions_pages_through_partitions_with_kafka_python(cluster, topic):
    """DescribeTopicPartitions (KIP-966), as Kafka 3.7+ admin clients describe topics."""
    admin = KafkaAdminClient(bootstrap_servers=cluster.all)
    other = topic + "-b"
    admin.create_topics([KpNewTopic(topic, 5, 3), KpNewTopic(other, 2, 1)])
    eventually(lambda: all(p["leader_id"] >= 0 for p in admin.describe_topic_partitions([topic])["topics"][0]["partitions"]))
    page = admin.describe_topic_partitions([other, topic, "no-such-topic"], response_partition_limit=3)
    names = [t["name"] for t in page["topics"]]
    assert names == ["no-such-topic", topic], names
    assert page["topics"][0]["error_code"] == 3
    first = page["topics"][1]
    assert [p["partition_index"] for p in first["partitions"]] == [0, 1, 2]
    assert all(len(p["replica_nodes"]) == 3 and sorted(p["isr_nodes"]) == sorted(p["replica_nodes"])
               for p in first["partitions"])
    assert page["next_cursor"] == {"topic_name": topic, "partition_index": 3}
    rest = admin.describe_topic_partitions([other, topic], response_partition_limit=3, cursor=page["next_cursor"])
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in rest["topics"]] == [
        (topic, [3, 4]), (other, [0])]
    assert rest["next_cursor"] == {"topic_name": other, "partition_index": 1}
    everything = admin.describe_topic_partitions([])
    assert {topic, other} <= {t["name"] for t in everything["topics"]}
    assert everything["next_cursor"] is None
    admin.close()
