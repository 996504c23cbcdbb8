"""Clients on old protocol versions (issue 19): kafka-python told it talks to an old broker
(`api_version`) sends the versions Kafka 3.9 still serves and Kafka 4 dropped; a version samsa
does not serve closes the connection with one WARN naming the client."""
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kafka.errors import TopicAlreadyExistsError

from conftest import expected_records


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
    # Fetch v1 (api_version 0.9) is not served: the connection closes, and the broker says why.
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=(0, 9), group_id=None,
                      client_id="legacy-fetcher", consumer_timeout_ms=3000)
    try:
        c.assign([TopicPartition(topic, 0)])
        c.seek_to_beginning()
        list(c)
    except Exception:  # noqa: BLE001 - the client sees a closed connection; that is the point
        pass
    finally:
        c.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(broker.log_path) as f:
            lines = [l for l in f if "closed a client's connection" in l and "legacy-fetcher" in l]
        if lines:
            break
        time.sleep(0.2)
    assert lines, "a WARN names the client whose connection was closed"
    assert "api=\"Fetch\"" in lines[0] and "api_version=1" in lines[0]


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
