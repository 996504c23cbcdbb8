"""confluent-kafka 2.16 (librdkafka 2.16): produce with acks 0/1/all, idempotence and every
codec; read back exact keys, values, headers and offsets; list offsets; admin calls; restart."""
import time

import pytest
from confluent_kafka import Consumer, KafkaException, OFFSET_BEGINNING, OFFSET_END, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

from conftest import expected_records

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def produce(broker, topic, records, **conf):
    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap, **conf})
    for k, v, h in records:
        p.produce(topic, key=k, value=v, headers=h, on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(30) == 0
    assert errors == []


def consume_all(broker, topic, count, partition=0):
    # group.id is mandatory in confluent-kafka; with assign() and no commits no group is formed
    # (consumer groups arrive with a later issue).
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "samsa-test", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    got, deadline = [], time.time() + 30
    while len(got) < count and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got.append((m.offset(), m.key(), m.value(), m.headers() or []))
    c.close()
    return got


@pytest.mark.parametrize("acks", ["0", "1", "all"])
@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_read_back_exactly(broker, topic, acks, codec):
    recs = expected_records(300, f"{acks}-{codec}")
    # acks=0 cannot be idempotent; acks=1 and all use librdkafka's default (not idempotent).
    produce(broker, topic, recs, **{"acks": acks, "compression.type": codec, "linger.ms": 5})
    got = consume_all(broker, topic, len(recs))
    assert got == [(i, k, v, h) for i, (k, v, h) in enumerate(recs)]


@pytest.mark.parametrize("codec", CODECS)
def test_idempotent_producer(broker, topic, codec):
    recs = expected_records(1000, "idem")
    produce(broker, topic, recs, **{"enable.idempotence": True, "compression.type": codec})
    got = consume_all(broker, topic, len(recs))
    assert got == [(i, k, v, h) for i, (k, v, h) in enumerate(recs)]


def test_list_offsets_by_time_and_watermarks(broker, topic):
    p = Producer({"bootstrap.servers": broker.bootstrap})
    base = int(time.time() * 1000) - 100_000
    for i in range(10):
        p.produce(topic, value=f"v{i}".encode(), timestamp=base + i * 1000)
        p.flush(10)  # one batch per record, so timestamps grow batch by batch
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "samsa-test"})
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 10)
    (tp,) = c.offsets_for_times([TopicPartition(topic, 0, base + 3500)], timeout=10)
    assert tp.offset == 4
    (tp,) = c.offsets_for_times([TopicPartition(topic, 0, base + 10**9)], timeout=10)
    assert tp.offset == OFFSET_END  # -1: no record that late
    c.close()


def test_admin_create_describe_alter_delete(broker, topic):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1, config={"retention.ms": "3600000"})])
    fs[topic].result(30)
    md = a.list_topics(timeout=10)
    assert len(md.topics[topic].partitions) == 3

    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    cfg = a.describe_configs([res])[res].result(30)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["cleanup.policy"].value == "delete"

    a.incremental_alter_configs([ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])])[res].result(30)
    assert a.describe_configs([res])[res].result(30)["retention.ms"].value == "7200000"

    a.create_partitions([NewPartitions(topic, 5)])[topic].result(30)
    assert len(a.list_topics(timeout=10).topics[topic].partitions) == 5

    # Errors clients rely on
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    assert e.value.args[0].code() == 36  # TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic(topic + "-rf", num_partitions=1, replication_factor=3)])[topic + "-rf"].result(30)
    assert e.value.args[0].code() == 38  # INVALID_REPLICATION_FACTOR
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic(topic + "-c", 1, 1, config={"cleanup.policy": "shred"})])[topic + "-c"].result(30)
    assert e.value.args[0].code() == 40  # INVALID_CONFIG
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions(topic, 2)])[topic].result(30)
    assert e.value.args[0].code() == 37  # INVALID_PARTITIONS

    a.delete_topics([topic])[topic].result(30)
    assert topic not in a.list_topics(timeout=10).topics


def test_survives_restart(broker, topic):
    recs = expected_records(500, "restart")
    produce(broker, topic, recs, **{"enable.idempotence": True, "compression.type": "snappy"})
    broker.restart()
    got = consume_all(broker, topic, len(recs))
    assert got == [(i, k, v, h) for i, (k, v, h) in enumerate(recs)]
