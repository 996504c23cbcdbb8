"""aiokafka 0.14 (only old, non-flexible API versions): produce with acks 0/1/all, idempotence and
every codec; read back exact keys, values, headers and offsets; offsets; admin calls; restart."""
import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from conftest import expected_records

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def produce(broker, topic, records, **conf):
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, **conf)
    await p.start()
    try:
        futures = [await p.send(topic, key=k, value=v, headers=h) for k, v, h in records]
        await p.flush()
        if conf.get("acks", 1) != 0:
            await asyncio.gather(*futures)
    finally:
        await p.stop()


async def consume_all(broker, topic, count, partition=0):
    c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        got, deadline = [], time.time() + 30
        while len(got) < count and time.time() < deadline:
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                got.extend((m.offset, m.key, m.value, list(m.headers)) for m in msgs)
        return got
    finally:
        await c.stop()


def hdrs(recs):
    return [(i, k, v, [(hk, hv) for hk, hv in h]) for i, (k, v, h) in enumerate(recs)]


@pytest.mark.parametrize("acks", [0, 1, "all"])
@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_read_back_exactly(broker, topic, acks, codec):
    recs = expected_records(300, f"{acks}-{codec}")

    async def go():
        await produce(broker, topic, recs, acks=acks, compression_type=codec, linger_ms=5)
        return await consume_all(broker, topic, len(recs))

    assert run(go()) == hdrs(recs)


def test_idempotent_producer(broker, topic):
    recs = expected_records(1000, "idem")

    async def go():
        await produce(broker, topic, recs, enable_idempotence=True, compression_type="lz4")
        return await consume_all(broker, topic, len(recs))

    assert run(go()) == hdrs(recs)


def test_offsets(broker, topic):
    base = int(time.time() * 1000) - 100_000

    async def go():
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await p.start()
        for i in range(10):
            await (await p.send(topic, value=f"v{i}".encode(), timestamp_ms=base + i * 1000))
        await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await c.start()
        tp = TopicPartition(topic, 0)
        try:
            assert await c.beginning_offsets([tp]) == {tp: 0}
            assert await c.end_offsets([tp]) == {tp: 10}
            found = (await c.offsets_for_times({tp: base + 3500}))[tp]
            assert found.offset == 4 and found.timestamp == base + 4000
        finally:
            await c.stop()

    run(go())


def test_admin(broker, topic):
    async def go():
        a = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await a.start()
        try:
            await a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1, topic_configs={"retention.ms": "120000"})])
            assert topic in await a.list_topics()
            (res,) = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entries = {c[0]: c[1] for c in res.resources[0][4]}
            assert entries["retention.ms"] == "120000"
            assert entries["cleanup.policy"] == "delete"
            await a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "60000"})])
            (res,) = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            assert {c[0]: c[1] for c in res.resources[0][4]}["retention.ms"] == "60000"
            resp = await a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
            assert resp.topic_errors[0][1] == 36  # TOPIC_ALREADY_EXISTS
            await a.delete_topics([topic])
            assert topic not in await a.list_topics()
        finally:
            await a.close()

    run(go())


def test_survives_restart(broker, topic):
    recs = expected_records(400, "restart")
    run(produce(broker, topic, recs, compression_type="snappy"))
    broker.restart()
    assert run(consume_all(broker, topic, len(recs))) == hdrs(recs)
