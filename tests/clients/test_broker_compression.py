"""Broker-side compression (topic `compression.type`, Kafka's semantics): a topic with
compression.type=zstd stores zstd batches whatever the producer sent (lz4 from confluent-kafka,
gzip from kafka-python, snappy from aiokafka, none from kcat), and every client reads them."""
import asyncio
import glob
import os
import struct
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from conftest import kcat

ZSTD = 4


def stored_codecs(broker, topic):
    """The codec of every batch stored in `topic`-0's segment files."""
    codecs = []
    for f in sorted(glob.glob(os.path.join(broker.data_dir, "data", f"{topic}-0", "*.log"))):
        data = open(f, "rb").read()
        at = 0
        while at + 61 <= len(data):
            length = struct.unpack(">i", data[at + 8:at + 12])[0]
            attributes = struct.unpack(">h", data[at + 21:at + 23])[0]
            codecs.append(attributes & 0x07)
            at += 12 + length
    return codecs


def test_a_zstd_topic_stores_zstd_whatever_the_producers_send_and_every_client_reads_it(broker):
    t = f"cz-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(t, 1, 1, config={"compression.type": "zstd"})])[t].result(30)
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "lz4", "linger.ms": 5})
    for i in range(10):
        p.produce(t, value=f"confluent-{i}", partition=0)
    assert p.flush(30) == 0
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip")
    for i in range(10):
        kp.send(t, value=f"kafka-python-{i}".encode(), partition=0)
    kp.flush()
    kp.close()

    async def aio_produce():
        ap = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="snappy")
        await ap.start()
        try:
            for i in range(10):
                await ap.send_and_wait(t, f"aiokafka-{i}".encode(), partition=0)
        finally:
            await ap.stop()

    asyncio.run(aio_produce())
    kcat("-b", broker.bootstrap, "-P", "-t", t, "-p", "0", input=b"kcat-0\nkcat-1\n")
    want = sorted([f"confluent-{i}" for i in range(10)] + [f"kafka-python-{i}" for i in range(10)]
                  + [f"aiokafka-{i}" for i in range(10)] + ["kcat-0", "kcat-1"])

    codecs = stored_codecs(broker, t)
    assert codecs and all(c == ZSTD for c in codecs), f"stored codecs {codecs}"

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{uuid.uuid4()}"})
    c.assign([TopicPartition(t, 0, 0)])
    got = []
    while len(got) < len(want):
        m = c.poll(10)
        assert m is not None, f"confluent-kafka read {len(got)} of {len(want)}"
        got.append(m.value().decode())
    c.close()
    assert sorted(got) == want
    kc = KafkaConsumer(t, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                       consumer_timeout_ms=5000)
    assert sorted(m.value.decode() for m in kc) == want
    kc.close()

    async def aio_read():
        ac = AIOKafkaConsumer(t, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
        await ac.start()
        out = []
        try:
            while len(out) < len(want):
                batch = await ac.getmany(timeout_ms=5000)
                assert batch, f"aiokafka read {len(out)} of {len(want)}"
                for msgs in batch.values():
                    out.extend(m.value.decode() for m in msgs)
        finally:
            await ac.stop()
        return out

    assert sorted(asyncio.run(aio_read())) == want
    out = kcat("-b", broker.bootstrap, "-C", "-t", t, "-e", "-q", "-o", "beginning")
    assert sorted(out.decode().split()) == want
