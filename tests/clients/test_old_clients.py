"""Clients on old protocol versions (issue 19): kafka-python told it talks to an old broker
(`api_version`) sends the versions Kafka 3.9 still serves and Kafka 4 dropped; a version samsa
does not serve closes the connection with one WARN naming the client."""
import subprocess
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kafka.errors import TopicAlreadyExistsError

from conftest import expected_records, kcat


def test_list_offsets_v0_answers_old_clients(broker, topic):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for k, v, h in expected_records(25, "old"):
        p.send(topic, key=k, value=v, headers=h, partition=0)
    p.flush(30)
    p.close()
    # api_version (0, 9): Metadata v0 and ListOffsets v0, as Burrow and old Saramas send them.
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=(0, 9), group_id=None,
                      enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        assert c.end_offsets([tp]) == {tp: 25}
        assert c.beginning_offsets([tp]) == {tp: 0}
    finally:
        c.close()


def test_an_unserved_version_is_explained_in_the_broker_log(broker, topic):
    # A Fetch version past every one Kafka defines (here 99, from a raw socket under a client
    # id of its own): the connection closes, and the broker says why.
    import socket
    import struct
    client_id = b"legacy-fetcher"
    body = struct.pack(">hhih", 1, 99, 7, len(client_id)) + client_id + b"\0" * 16
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        assert s.recv(4) == b"", "the broker closes the connection without an answer"
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(broker.log_path) as f:
            lines = [l for l in f if "closed a client's connection" in l and "legacy-fetcher" in l]
        if lines:
            break
        time.sleep(0.2)
    assert lines, "a WARN names the client whose connection was closed"
    assert "api=\"Fetch\"" in lines[0] and "api_version=99" in lines[0]


# kafka-python told the broker is 0.9 writes message format v0 (Produce v1, Fetch v1: no
# timestamps, LZ4 with Kafka 0.9's frame checksum); told 0.10.1, format v1 (Produce v2, Fetch v3).
OLD_FORMATS = [((0, 9), 0), ((0, 10, 1), 1)]


@pytest.mark.parametrize("api_version,magic", OLD_FORMATS, ids=["magic0", "magic1"])
@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4"])
def test_message_formats_v0_v1_round_trip(broker, topic, api_version, magic, codec):
    """Produce v0-2 sets are up-converted on append and Fetch v0-3 answers are down-converted:
    an old client reads back every key and value (and, in magic 1, timestamp) it wrote, through
    a consumer group with commits, and a modern client reads the same records from the log."""
    from confluent_kafka import Consumer
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                      compression_type=codec, linger_ms=50)
    sent = [(f"k{i}".encode(), f"old-{codec}-{i}".encode() * 3) for i in range(40)]
    stamp = 1_700_000_000_000
    for i, (k, v) in enumerate(sent):
        p.send(topic, key=k, value=v, partition=0, timestamp_ms=stamp + i)
    p.flush(30)
    p.close()
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, api_version=api_version,
                      group_id="g-" + topic, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=10000)
    try:
        got = []
        for m in c:
            got.append(m)
            if len(got) == len(sent):
                break
        c.commit()
        tp = TopicPartition(topic, 0)
        assert c.committed(tp) == len(sent)
    finally:
        c.close()
    assert [(m.key, m.value) for m in got] == sent
    assert [m.offset for m in got] == list(range(len(sent)))
    # kafka-python shows a magic 0 message's missing timestamp as None.
    expected_ts = [stamp + i for i in range(len(sent))] if magic == 1 else [None] * len(sent)
    assert [m.timestamp for m in got] == expected_ts
    modern = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "m-" + topic,
                       "auto.offset.reset": "earliest"})
    try:
        modern.subscribe([topic])
        read = []
        deadline = time.time() + 30
        while len(read) < len(sent) and time.time() < deadline:
            m = modern.poll(1)
            if m is not None and not m.error():
                read.append((m.key(), m.value()))
        assert read == sent
    finally:
        modern.close()


def test_modern_records_are_down_converted_for_old_fetches(broker, topic):
    """v2 batches from a modern producer (headers, zstd elsewhere) read by Fetch v0-3: keys and
    values kept, headers dropped (formats v0/v1 cannot carry them), as Kafka."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "lz4",
                  "linger.ms": 20})
    records = expected_records(30, "modern")
    for k, v, h in records:
        p.produce(topic, key=k, value=v, headers=h, partition=0)
    p.flush(30)
    for api_version, _ in OLD_FORMATS:
        c = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                          group_id=None, consumer_timeout_ms=10000)
        try:
            tp = TopicPartition(topic, 0)
            c.assign([tp])
            c.seek_to_beginning(tp)
            got = []
            for m in c:
                got.append(m)
                if len(got) == len(records):
                    break
        finally:
            c.close()
        assert [(m.key, m.value) for m in got] == [(k, v) for k, v, _ in records]
        assert all(not m.headers for m in got)


def kcat_old(*args, input=None):
    """kcat as a Kafka 0.9 client: no ApiVersions, Produce v1, Fetch v1, message format v0."""
    r = subprocess.run(["kcat", "-X", "api.version.request=false",
                        "-X", "broker.version.fallback=0.9.0", *args],
                       input=input, capture_output=True, timeout=60)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4"])
def test_kcat_as_a_0_9_client(broker, topic, codec):
    lines = b"".join(b"line-%d-%s\n" % (i, codec.encode()) for i in range(20))
    rc, _, err = kcat_old("-P", "-b", broker.bootstrap, "-t", topic, "-z", codec, input=lines)
    assert rc == 0, err
    rc, out, err = kcat_old("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-f", "%o %s\n")
    assert rc == 0, err
    assert out.decode().splitlines() == [f"{i} line-{i}-{codec}" for i in range(20)]


def test_old_fetches_of_zstd_or_disabled_down_conversion_get_kafka_errors(broker, topic):
    """zstd cannot be written in formats v0/v1: UNSUPPORTED_COMPRESSION_TYPE; a topic with
    message.downconversion.enable=false: UNSUPPORTED_VERSION. Modern clients read both."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    zstd, off = topic + "-zstd", topic + "-nodown"
    futures = admin.create_topics([
        NewTopic(zstd, 1, 1, config={"compression.type": "zstd"}),
        NewTopic(off, 1, 1, config={"message.downconversion.enable": "false"}),
    ])
    for f in futures.values():
        f.result(30)
    for t in (zstd, off):
        # An old producer's gzip set, stored as zstd on the first topic (broker-side compression).
        rc, _, err = kcat_old("-P", "-b", broker.bootstrap, "-t", t, "-z", "gzip",
                              input=b"a\nb\nc\n")
        assert rc == 0, err
        assert kcat("-C", "-b", broker.bootstrap, "-t", t, "-e", "-f", "%s\n") == b"a\nb\nc\n"
    rc, _, err = kcat_old("-C", "-b", broker.bootstrap, "-t", zstd, "-e", "-E")
    assert "Unsupported compression type" in err, err
    rc, _, err = kcat_old("-C", "-b", broker.bootstrap, "-t", off, "-e", "-E")
    assert "API version not supported" in err, err  # UNSUPPORTED_VERSION


def test_a_corrupt_message_set_is_refused_and_the_broker_serves_on(broker, topic):
    """Produce v2 from a raw socket with a magic 1 message whose CRC does not match: the partition
    gets CORRUPT_MESSAGE (2), nothing is written, and the connection keeps serving."""
    import socket
    import struct
    import zlib
    kcat("-P", "-b", broker.bootstrap, "-t", topic, input=b"seed\n")

    def message(crc_delta):
        body = struct.pack(">bbq", 1, 0, 1_700_000_000_000) + struct.pack(">i", -1) \
            + struct.pack(">i", 5) + b"hello"
        crc = (zlib.crc32(body) + crc_delta) & 0xffffffff
        return struct.pack(">qi", 0, 4 + len(body)) + struct.pack(">I", crc) + body

    def produce(records, corr):
        t = topic.encode()
        req = struct.pack(">hhih", 0, 2, corr, 3) + b"raw" + struct.pack(">hi", 1, 5000) \
            + struct.pack(">ih", 1, len(t)) + t + struct.pack(">iii", 1, 0, len(records)) + records
        s.sendall(struct.pack(">i", len(req)) + req)
        (size,) = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))
        resp = s.recv(size, socket.MSG_WAITALL)
        # correlation id, [topics: name, [partition, error, base_offset, log_append_time]], throttle
        at = 4 + 4 + 2 + len(t) + 4
        partition, error, base = struct.unpack(">ihq", resp[at:at + 14])
        return error, base

    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        assert produce(message(1), 1)[0] == 2
        assert produce(message(0), 2) == (0, 1), "the next good set is written at offset 1"
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-f", "%o %s\n")
    assert out == b"0 seed\n1 hello\n"


def test_create_and_delete_topics_in_the_0_10_layouts(broker, topic):
    from kafka.admin import KafkaAdminClient, NewTopic
    # 0.10.1: CreateTopics v0 and DeleteTopics v0; 0.10.2: CreateTopics v1 (error messages).
    for version, name in [((0, 10, 1), topic + "-v0"), ((0, 10, 2), topic + "-v1")]:
        a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=version)
        try:
            created = a.create_topics([NewTopic(name, 3, 1)])
            assert [t["error_code"] for t in created["topics"]] == [0]
            with pytest.raises(TopicAlreadyExistsError):
                a.create_topics([NewTopic(name, 3, 1)])
        finally:
            a.close()
    modern = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        listed = modern.list_topics()
        assert topic + "-v0" in listed and topic + "-v1" in listed
    finally:
        modern.close()
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=(0, 10, 1))
    try:
        deleted = a.delete_topics([topic + "-v0"])
        assert deleted["topics"][0]["error_code"] == 0
    finally:
        a.close()


def test_offset_commit_v1_and_fetch_v1_as_0_8_2_clients_send_them(broker, topic):
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.structs import OffsetAndMetadata
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    tp = TopicPartition(topic, 1)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="old-" + topic,
                      api_version=(0, 8, 2), enable_auto_commit=False)
    try:
        c.assign([tp])
        c.commit({tp: OffsetAndMetadata(5, "meta", -1)})
        assert c.committed(tp) == 5
    finally:
        c.close()
    # A modern client reads the same commit.
    m = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="old-" + topic, enable_auto_commit=False)
    try:
        assert m.committed(tp) == 5
    finally:
        m.close()


def test_describe_configs_v0_shows_overrides_and_defaults(broker, topic):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    modern = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    modern.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "3600000"})])
    modern.close()
    # 0.11: DescribeConfigs v0, where each entry says is_default instead of its source.
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=(0, 11))
    try:
        described = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        a.close()
    # kafka-python 3 answers {type: {name: {key: entry}}} and leaves out the defaults.
    entries = described["topic"][topic]
    assert entries["retention.ms"]["value"] == "3600000"
    assert entries["retention.ms"]["is_default"] is False
    assert entries.get("cleanup.policy", {"is_default": True})["is_default"] is True


def test_describe_log_dirs_v0(broker, topic):
    from kafka.admin import KafkaAdminClient, NewTopic
    modern = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    modern.create_topics([NewTopic(topic, 2, 1)])
    modern.close()
    # 1.0: DescribeLogDirs v0 (the same layout as v1).
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=(1, 0))
    try:
        (answer,) = a.describe_log_dirs({topic: [0, 1]})
    finally:
        a.close()
    (log_dir,) = answer["log_dirs"]
    (entry,) = [t for t in log_dir["topics"] if t["name"] == topic]
    assert sorted(p["partition_index"] for p in entry["partitions"]) == [0, 1]


# Every topic key Kafka 3.9 defines, each with a valid value other than its default.
KAFKA_39_TOPIC_KEYS = {
    "cleanup.policy": "compact,delete", "compression.type": "producer",
    "compression.gzip.level": "5", "compression.lz4.level": "10", "compression.zstd.level": "7",
    "delete.retention.ms": "1000", "file.delete.delay.ms": "1000", "flush.messages": "1000",
    "flush.ms": "2000", "follower.replication.throttled.replicas": "0:1",
    "index.interval.bytes": "8192", "leader.replication.throttled.replicas": "*",
    "local.retention.bytes": "-2", "local.retention.ms": "-2", "max.compaction.lag.ms": "100000",
    "max.message.bytes": "2000000", "message.downconversion.enable": "false",
    "message.format.version": "3.0-IV1", "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "3600000", "message.timestamp.difference.max.ms": "3600000",
    "message.timestamp.type": "LogAppendTime", "min.cleanable.dirty.ratio": "0.25",
    "min.compaction.lag.ms": "10", "min.insync.replicas": "1", "preallocate": "true",
    "remote.log.copy.disable": "false", "remote.log.delete.on.disable": "false",
    "remote.storage.enable": "false", "retention.bytes": "1000000000", "retention.ms": "86400000",
    "segment.bytes": "1048576", "segment.index.bytes": "1048576", "segment.jitter.ms": "10",
    "segment.ms": "3600000", "unclean.leader.election.enable": "false",
}


def test_every_kafka_3_9_topic_key_is_accepted_and_described(broker, topic):
    """librdkafka's admin test 0081 creates topics with keys like these: each is accepted with
    Kafka's validation and read back; a value Kafka refuses is INVALID_CONFIG."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=KAFKA_39_TOPIC_KEYS)])[topic].result(30)
    res = ConfigResource("TOPIC", topic)
    described = admin.describe_configs([res])[res].result(30)
    for key, value in KAFKA_39_TOPIC_KEYS.items():
        assert described[key].value == value, key
    for key, bad in [("compression.gzip.level", "12"), ("remote.storage.enable", "true"),
                     ("segment.index.bytes", "2"), ("leader.replication.throttled.replicas", "x")]:
        name = topic + "-bad"
        with pytest.raises(KafkaException) as e:
            admin.create_topics([NewTopic(name, 1, 1, config={key: bad})])[name].result(30)
        assert e.value.args[0].code() == 40, key  # INVALID_CONFIG


def test_records_outside_the_timestamp_bounds_get_invalid_timestamp(broker, topic):
    """KIP-937 bounds (message.timestamp.before/after.max.ms) on a CreateTime topic: a record two
    hours old, or one hour ahead, is refused with INVALID_TIMESTAMP; nothing is written."""
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={
        "message.timestamp.before.max.ms": "3600000",
        "message.timestamp.after.max.ms": "600000",
    })])[topic].result(30)
    now = int(time.time() * 1000)
    outcomes = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "retries": 0, "linger.ms": 0})
    for ts in [now - 2 * 3600_000, now + 3600_000, now]:
        p.produce(topic, key=b"k", value=b"v", timestamp=ts,
                  on_delivery=lambda e, m: outcomes.append(e and e.code()))
        p.flush(30)
    assert outcomes == [KafkaError.INVALID_TIMESTAMP, KafkaError.INVALID_TIMESTAMP, None]
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    tp = TopicPartition(topic, 0)
    try:
        assert c.end_offsets([tp]) == {tp: 1}, "only the record within bounds was written"
    finally:
        c.close()


def test_authorized_operations_are_filled_when_asked(broker, topic):
    """KIP-430, as librdkafka's admin tests ask: without an authorizer every operation a
    resource type supports is authorized (Kafka's answer); not asked, none are listed."""
    from confluent_kafka import Consumer, TopicCollection
    from confluent_kafka.admin import AclOperation, AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    cluster = admin.describe_cluster(include_authorized_operations=True).result(30)
    assert set(cluster.authorized_operations) == {
        AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE}
    assert not admin.describe_cluster().result(30).authorized_operations
    described = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True)
    ops = set(described[topic].result(30).authorized_operations)
    assert ops == {AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
                   AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
                   AclOperation.ALTER_CONFIGS}
    group = "ops-" + topic
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    c.subscribe([topic])
    deadline = time.time() + 30
    while not c.assignment() and time.time() < deadline:
        c.poll(0.2)
    try:
        g = admin.describe_consumer_groups([group], include_authorized_operations=True)[group].result(30)
        assert set(g.authorized_operations) == {AclOperation.READ, AclOperation.DELETE,
                                                AclOperation.DESCRIBE}
    finally:
        c.close()


def test_write_txn_markers_v0_writes_a_marker(broker, topic):
    """WriteTxnMarkers v0 (the non-flexible layout Kafka 2.x brokers send) from a raw socket: an
    ABORT marker for a producer lands as one control record, which consumers never see."""
    import socket
    import struct
    kcat("-P", "-b", broker.bootstrap, "-t", topic, input=b"data\n")
    t = topic.encode()
    body = struct.pack(">hhih", 27, 0, 9, 3) + b"raw" + struct.pack(">iqhb", 1, 12345, 0, 0) \
        + struct.pack(">ih", 1, len(t)) + t + struct.pack(">iii", 1, 0, 0)
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))
        resp = s.recv(size, socket.MSG_WAITALL)
    # correlation id, [producer_id, [topic, [partition, error_code]]]
    corr, markers, pid = struct.unpack(">iiq", resp[:16])
    assert (corr, markers, pid) == (9, 1, 12345)
    at = 16 + 4 + 2 + len(t) + 4
    assert struct.unpack(">ih", resp[at:at + 6]) == (0, 0), "partition 0 written, no error"
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, consumer_timeout_ms=3000)
    tp = TopicPartition(topic, 0)
    try:
        assert c.end_offsets([tp]) == {tp: 2}, "the marker took offset 1"
        c.assign([tp])
        c.seek_to_beginning(tp)
        assert [m.value for m in c] == [b"data"]
    finally:
        c.close()


def test_a_zstd_topic_refuses_fetches_older_than_v10(broker, topic):
    """KIP-110, as Kafka 3.9: a topic with compression.type=zstd answers Fetch below v10 (here
    kafka-python as a 2.0 client, Fetch v8) with UNSUPPORTED_COMPRESSION_TYPE; current clients
    read it."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka.errors import UnsupportedCompressionTypeError
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"compression.type": "zstd"})])[topic].result(30)
    kcat("-P", "-b", broker.bootstrap, "-t", topic, input=b"v\n")
    assert kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-f", "%s\n") == b"v\n"
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=(2, 0), group_id=None)
    tp = TopicPartition(topic, 0)
    try:
        c.assign([tp])
        c.seek_to_beginning(tp)
        with pytest.raises(UnsupportedCompressionTypeError):
            c.poll(10000)
    finally:
        c.close()
