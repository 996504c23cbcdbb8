"""Dynamic broker configs (KIP-226, stored in the metadata log): per broker through
confluent-kafka's and kafka-python's admin clients, the cluster-wide default through
`samsa configs --entity-default` (librdkafka and kafka-python refuse an empty broker name), with
DescribeConfigs sources and synonyms as Kafka reports them; a dynamic log.retention.ms and
log.segment.bytes take effect on a topic without overrides at once, and survive a restart."""
import shutil
import subprocess

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic, ResourceType)
from kafka.admin import ConfigResource as KpResource, ConfigResourceType, KafkaAdminClient

from conftest import SAMSA_BIN, Broker, kcat, wait_for


@pytest.fixture(scope="module")
def node():
    b = Broker(overrides=["log.retention.check.interval.ms=200"])
    yield b
    try:
        b.stop()
    finally:
        shutil.rmtree(b.data_dir, ignore_errors=True)


def samsa_configs(node, *args, check=True):
    r = subprocess.run([SAMSA_BIN, "configs", "--bootstrap-server", node.bootstrap, *args],
                       capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def set_on_broker(admin, broker, key, value, op=AlterConfigOpType.SET):
    r = ConfigResource(ResourceType.BROKER, str(broker),
                       incremental_configs=[ConfigEntry(key, value, incremental_operation=op)])
    admin.incremental_alter_configs([r])[r].result(30)


def broker_entry(admin, key, broker=1):
    r = ConfigResource(ResourceType.BROKER, str(broker))
    return admin.describe_configs([r])[r].result(30)[key]


def topic_entry(admin, topic, key):
    r = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([r])[r].result(30)[key]


def earliest(node, topic):
    out = kcat("-b", node.bootstrap, "-Q", "-t", f"{topic}:0:-2")
    return int(out.split()[-1])


def test_a_brokers_own_value_beats_the_cluster_default_with_sources_and_synonyms(node, topic):
    ck = AdminClient({"bootstrap.servers": node.bootstrap})
    ck.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    assert broker_entry(ck, "log.retention.ms").source == ConfigSource.DEFAULT_CONFIG.value
    samsa_configs(node, "--alter", "--entity-type", "brokers", "--entity-default",
                  "--add-config", "log.retention.ms=7200000")
    e = broker_entry(ck, "log.retention.ms")
    assert (e.value, e.source, e.is_read_only) == ("7200000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, False)
    t = topic_entry(ck, topic, "retention.ms")
    assert (t.value, t.source) == ("7200000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)

    set_on_broker(ck, 1, "log.retention.ms", "3600000")
    e = broker_entry(ck, "log.retention.ms")
    assert (e.value, e.source) == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert topic_entry(ck, topic, "retention.ms").value == "3600000"

    # kafka-python: every layer in the synonyms, most specific first.
    kp = KafkaAdminClient(bootstrap_servers=node.bootstrap)
    got = kp.describe_configs([KpResource(ConfigResourceType.BROKER, "1", ["log.retention.ms"])],
                              include_synonyms=True, config_filter="all")
    entry = got["broker"]["1"]["log.retention.ms"]
    assert [(s["source"], s["value"]) for s in entry["synonyms"]] == [
        ("DYNAMIC_BROKER_CONFIG", "3600000"), ("DYNAMIC_DEFAULT_BROKER_CONFIG", "7200000"),
        ("DEFAULT_CONFIG", "604800000")]
    # Deleting the broker's own value falls back to the cluster default.
    assert kp.alter_configs([KpResource(ConfigResourceType.BROKER, "1",
                                        {"log.retention.ms": ("DELETE", None)})]) == {"broker": {"1": "OK"}}
    assert broker_entry(ck, "log.retention.ms").value == "7200000"
    kp.close()

    out = samsa_configs(node, "--describe", "--entity-type", "brokers", "--entity-default").stdout
    assert "Default configs for brokers in the cluster are:" in out
    assert "log.retention.ms=7200000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=7200000}" in out
    samsa_configs(node, "--alter", "--entity-type", "brokers", "--entity-default",
                  "--delete-config", "log.retention.ms")
    assert broker_entry(ck, "log.retention.ms").source == ConfigSource.DEFAULT_CONFIG.value


def test_static_unknown_and_invalid_keys_are_refused_with_kafkas_codes(node):
    ck = AdminClient({"bootstrap.servers": node.bootstrap})
    with pytest.raises(KafkaException, match="INVALID_CONFIG.*Cannot update these configs dynamically: num.partitions"):
        set_on_broker(ck, 1, "num.partitions", "3")
    with pytest.raises(KafkaException, match="INVALID_CONFIG.*log.retention.ms"):
        set_on_broker(ck, 1, "log.retention.ms", "soon")
    with pytest.raises(KafkaException, match="INVALID_CONFIG.*unknown broker config"):
        set_on_broker(ck, 1, "no.such.key", "1")
    r = samsa_configs(node, "--alter", "--entity-type", "brokers", "--entity-name", "x",
                      "--add-config", "log.retention.ms=1", check=False)
    assert r.returncode != 0 and "InvalidRequest" in r.stderr, r.stderr
    # validate_only changes nothing.
    r = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("min.insync.replicas", "2", incremental_operation=AlterConfigOpType.SET)])
    ck.incremental_alter_configs([r], validate_only=True)[r].result(30)
    assert broker_entry(ck, "min.insync.replicas").source == ConfigSource.DEFAULT_CONFIG.value


def test_dynamic_segment_and_retention_defaults_act_on_topics_at_once_and_survive_a_restart(node, topic):
    ck = AdminClient({"bootstrap.servers": node.bootstrap})
    ck.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    samsa_configs(node, "--alter", "--entity-type", "brokers", "--entity-default",
                  "--add-config", "log.segment.bytes=1024")
    p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 0})
    for i in range(200):
        p.produce(topic, value=b"x" * 100)
        p.poll(0)
        if i % 20 == 0:
            p.flush(10)
    assert p.flush(30) == 0
    assert earliest(node, topic) == 0
    set_on_broker(ck, 1, "log.retention.ms", "1")
    wait_for(lambda: earliest(node, topic) > 100, timeout=30, what="retention deleted the old segments")
    node.restart()
    assert broker_entry(ck, "log.retention.ms").value == "1"
    assert broker_entry(ck, "log.segment.bytes").source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    set_on_broker(ck, 1, "log.retention.ms", "", op=AlterConfigOpType.DELETE)
    samsa_configs(node, "--alter", "--entity-type", "brokers", "--entity-default",
                  "--delete-config", "log.segment.bytes")
