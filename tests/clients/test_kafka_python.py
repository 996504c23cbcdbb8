"""kafka-python 3.0: produce with acks 0/1/all, its default idempotent producer and every codec;
read back exact keys, values, headers and offsets; offsets by time; admin calls; restart."""
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError

from conftest import expected_records

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def produce(broker, topic, records, **conf):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, **conf)
    futures = [p.send(topic, key=k, value=v, headers=h) for k, v, h in records]
    p.flush(30)
    if conf.get("acks", "all") != 0:
        for f in futures:
            f.get(timeout=30)
    p.close()


def consume_all(broker, topic, count, partition=0):
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, group_id=None)
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got, deadline = [], time.time() + 30
    while len(got) < count and time.time() < deadline:
        for msgs in c.poll(timeout_ms=1000).values():
            got.extend((m.offset, m.key, m.value, list(m.headers)) for m in msgs)
    c.close()
    return got


@pytest.mark.parametrize("acks", [0, 1, "all"])
@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_read_back_exactly(broker, topic, acks, codec):
    recs = expected_records(300, f"{acks}-{codec}")
    # kafka-python's producer is idempotent by default, which needs acks=all.
    produce(broker, topic, recs, acks=acks, compression_type=codec, enable_idempotence=(acks == "all"), linger_ms=5)
    got = consume_all(broker, topic, len(recs))
    assert got == [(i, k, v, h) for i, (k, v, h) in enumerate(recs)]


def test_default_producer_is_idempotent_and_works(broker, topic):
    recs = expected_records(1000, "idem")
    produce(broker, topic, recs)
    assert consume_all(broker, topic, len(recs)) == [(i, k, v, h) for i, (k, v, h) in enumerate(recs)]


def test_offsets(broker, topic):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    base = int(time.time() * 1000) - 100_000
    for i in range(10):
        p.send(topic, value=f"v{i}".encode(), timestamp_ms=base + i * 1000)
        p.flush()
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    tp = TopicPartition(topic, 0)
    assert c.beginning_offsets([tp]) == {tp: 0}
    assert c.end_offsets([tp]) == {tp: 10}
    found = c.offsets_for_times({tp: base + 3500})[tp]
    assert found.offset == 4 and found.timestamp == base + 4000
    assert c.offsets_for_times({tp: base + 10**9})[tp] is None
    c.close()


def test_admin(broker, topic):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1, topic_configs={"retention.bytes": "1048576"})])
    assert topic in a.list_topics()
    (desc,) = a.describe_topics([topic])
    assert len(desc["partitions"]) == 2
    entries = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
    assert entries["retention.bytes"]["value"] == "1048576"
    assert entries["retention.bytes"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "60000"})])
    entries = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
    assert entries["retention.ms"]["value"] == "60000"
    a.create_partitions({topic: NewPartitions(total_count=4)})
    (desc,) = a.describe_topics([topic])
    assert len(desc["partitions"]) == 4
    with pytest.raises(TopicAlreadyExistsError):
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    with pytest.raises(InvalidReplicationFactorError):
        a.create_topics([NewTopic(topic + "x", num_partitions=1, replication_factor=2)])
    cluster = a.describe_cluster()
    assert cluster["controller_id"] == 1 and len(cluster["brokers"]) == 1
    a.delete_topics([topic])
    assert topic not in a.list_topics()
    a.close()


def test_survives_restart(broker, topic):
    recs = expected_records(400, "restart")
    produce(broker, topic, recs, compression_type="gzip")
    broker.restart()
    assert consume_all(broker, topic, len(recs)) == [(i, k, v, h) for i, (k, v, h) in enumerate(recs)]
