"""Client quotas (KIP-546 admin, KIP-219 enforcement): AlterClientQuotas and
DescribeClientQuotas through kafka-python's protocol classes (no Python admin client wraps
them; Kafka's own tool is kafka-configs) and `samsa configs`; a producer and a consumer over
their byte rate get throttle_time_ms (seen by confluent-kafka's throttle_cb and kafka-python's
throttle metrics) and slow down while an unthrottled client beside them does not. The precise
rate is measured by scripts/bench-quota.sh, not asserted here."""
import shutil
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.protocol.admin.client_quotas import AlterClientQuotasRequest, DescribeClientQuotasRequest

from conftest import SAMSA_BIN, Broker

Entry = AlterClientQuotasRequest.EntryData
Component = DescribeClientQuotasRequest.ComponentData


@pytest.fixture(scope="module")
def node():
    b = Broker()
    yield b
    try:
        b.stop()
    finally:
        shutil.rmtree(b.data_dir, ignore_errors=True)


def send(admin, request):
    async def go():
        return await admin._manager.send(request)
    return admin._manager.run(go)


def alter(admin, entity, ops):
    """entity: [(type, name or None)]; ops: {key: value or None to remove}."""
    req = AlterClientQuotasRequest(entries=[Entry(
        entity=[Entry.EntityData(entity_type=t, entity_name=n) for t, n in entity],
        ops=[Entry.OpData(key=k, value=v or 0.0, remove=v is None) for k, v in ops.items()])],
        validate_only=False)
    e = send(admin, req).entries[0]
    return e.error_code, e.error_message


def describe(admin, components, strict=False):
    req = DescribeClientQuotasRequest(components=[
        Component(entity_type=t, match_type=m, match=n) for t, m, n in components], strict=strict)
    resp = send(admin, req)
    assert resp.error_code == 0, resp.error_message
    return sorted((tuple((e.entity_type, e.entity_name) for e in entry.entity),
                   {v.key: v.value for v in entry.values}) for entry in resp.entries)


def create_topic(node, topic):
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


def samsa_configs(node, *args):
    r = subprocess.run([SAMSA_BIN, "configs", "--bootstrap-server", node.bootstrap, *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_quotas_are_set_described_refused_and_kept_across_a_restart(node):
    kp = KafkaAdminClient(bootstrap_servers=node.bootstrap)
    assert alter(kp, [("user", "alice")], {"producer_byte_rate": 1048576.0})[0] == 0
    assert alter(kp, [("user", "alice"), ("client-id", "etl")], {"consumer_byte_rate": 2048.0,
                                                                  "request_percentage": 50.0})[0] == 0
    assert alter(kp, [("client-id", None)], {"producer_byte_rate": 4096.0})[0] == 0
    assert describe(kp, [("user", 0, "alice")], strict=True) == [
        ((("user", "alice"),), {"producer_byte_rate": 1048576.0})]
    assert len(describe(kp, [("user", 0, "alice")])) == 2
    assert describe(kp, [("client-id", 1, None)], strict=True) == [
        ((("client-id", None),), {"producer_byte_rate": 4096.0})]
    # Kafka's refusals: INVALID_REQUEST (42) with the reason.
    for entity, ops, why in [
        ([("user", "bob")], {"producer_byte_rate": 0.5}, "integer"),
        ([("user", "bob")], {"producer_byte_rate": -1.0}, "greater than 0"),
        ([("user", "bob")], {"no_such_quota": 1.0}, "Invalid configuration key"),
        ([("ip", "10.0.0.1")], {"connection_creation_rate": 1.0}, "ip quotas"),
        ([("user", "a"), ("user", "b")], {"producer_byte_rate": 1.0}, "duplicate"),
    ]:
        code, message = alter(kp, entity, ops)
        assert code == 42 and why in message, (entity, code, message)
    out = samsa_configs(node, "--describe", "--entity-type", "users", "--entity-name", "alice",
                        "--entity-type", "clients", "--entity-name", "etl")
    assert out.strip() == ("Quota configs for user-principal 'alice', client-id 'etl' are "
                           "consumer_byte_rate=2048.0, request_percentage=50.0")
    kp.close()
    node.restart()
    kp = KafkaAdminClient(bootstrap_servers=node.bootstrap)
    assert len(describe(kp, [])) == 3
    # Removing every value removes the entity.
    for entity, ops in [([("user", "alice")], {"producer_byte_rate": None}),
                        ([("user", "alice"), ("client-id", "etl")], {"consumer_byte_rate": None,
                                                                     "request_percentage": None}),
                        ([("client-id", None)], {"producer_byte_rate": None})]:
        assert alter(kp, entity, ops)[0] == 0
    assert describe(kp, []) == []
    kp.close()


class Sender:
    """A confluent-kafka producer writing as fast as it may for `seconds`, counting delivered
    bytes and the throttles the broker reported."""

    def __init__(self, bootstrap, topic, client_id, seconds):
        self.delivered, self.throttles = 0, []
        self.p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                           "throttle_cb": lambda e: self.throttles.append(e.throttle_time),
                           "queue.buffering.max.kbytes": 2048})
        self.topic, self.seconds = topic, seconds
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _delivered(self, err, msg):
        if err is None:
            self.delivered += len(msg.value())

    def _run(self):
        started = time.time()
        while time.time() - started < self.seconds:
            try:
                self.p.produce(self.topic, b"q" * 1000, on_delivery=self._delivered)
            except BufferError:
                self.p.poll(0.05)
            self.p.poll(0)
        self.elapsed = time.time() - started
        self.p.purge()
        self.p.flush(10)

    def rate(self):
        self.thread.join(self.seconds + 30)
        return self.delivered / self.elapsed


def test_a_producer_over_its_byte_rate_is_throttled_and_others_are_not(node, topic):
    create_topic(node, topic)
    samsa_configs(node, "--alter", "--entity-type", "clients", "--entity-name", "noisy",
                  "--add-config", "producer_byte_rate=200000")
    noisy = Sender(node.bootstrap, topic, "noisy", 12)
    quiet = Sender(node.bootstrap, topic, "quiet", 12)
    noisy_rate, quiet_rate = noisy.rate(), quiet.rate()
    assert noisy.throttles and max(noisy.throttles) > 0, "throttle_time_ms reached the producer"
    assert not quiet.throttles
    # The first burst is measured over the whole 11 s quota window (Kafka's rule), so a short
    # run sits above the quota; still far below an unthrottled producer.
    assert noisy_rate < 1_000_000 and quiet_rate > 10 * noisy_rate, (noisy_rate, quiet_rate)
    samsa_configs(node, "--alter", "--entity-type", "clients", "--entity-name", "noisy",
                  "--delete-config", "producer_byte_rate")


def test_a_consumer_over_its_byte_rate_is_throttled_by_empty_answers(node, topic):
    create_topic(node, topic)
    p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 20})
    for _ in range(6000):
        p.produce(topic, b"c" * 1000)
        p.poll(0)
    assert p.flush(30) == 0
    samsa_configs(node, "--alter", "--entity-type", "clients", "--entity-default",
                  "--add-config", "consumer_byte_rate=100000")
    # kafka-python: the fetch throttle shows in its metrics and the reading slows down.
    c = KafkaConsumer(topic, bootstrap_servers=node.bootstrap, client_id="slow-reader",
                      auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    started, got = time.time(), 0
    while time.time() - started < 8 and got < 6000:
        got += sum(len(v) for v in c.poll(timeout_ms=500).values())
    metrics = c.metrics()
    c.close()
    throttle_max = max(v for group in metrics.values() for k, v in group.items()
                       if k == "throttle-time-max" and v == v and v is not None)
    assert throttle_max > 0, metrics
    assert got < 6000, "a 100 kB/s quota cannot deliver 6 MB in 8 s"
    # confluent-kafka reading as an unthrottled user of its own client id... is still the
    # default client id's quota; an explicit higher quota for it lifts the limit.
    samsa_configs(node, "--alter", "--entity-type", "clients", "--entity-name", "fast-reader",
                  "--add-config", "consumer_byte_rate=1000000000")
    ck = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "q-" + topic, "client.id": "fast-reader",
                   "auto.offset.reset": "earliest", "enable.auto.commit": False})
    ck.subscribe([topic])
    started, read = time.time(), 0
    while time.time() - started < 30 and read < 6000:
        m = ck.poll(1)
        if m is not None and m.error() is None:
            read += 1
    ck.close()
    assert read == 6000
    samsa_configs(node, "--alter", "--entity-type", "clients", "--entity-default",
                  "--delete-config", "consumer_byte_rate")
