"""Log compaction with real clients: keyed updates and tombstones on a compacted topic with small
segments and a low dirty ratio, read back from the beginning by confluent-kafka, kafka-python,
aiokafka and kcat while producers keep writing; keyless records refused; switching a topic's
policy; SIGKILL during cleaning; a group's thousands of commits compacted in __consumer_offsets."""
import asyncio
import os
import random
import shutil
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from conftest import Broker, kcat

# The cleaner looks for work every 200 ms; a topic becomes cleanable once 1% of it is dirty.
CLEANER = ["log.cleaner.backoff.ms=200", "log.flush.interval.ms=100"]
COMPACTED = {
    "cleanup.policy": "compact",
    "segment.bytes": "16384",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "0",
}
KEYS = 60


@pytest.fixture(scope="module")
def cbroker():
    b = Broker(overrides=CLEANER + ["offsets.topic.segment.bytes=16384", "offsets.topic.num.partitions=1"])
    yield b
    try:
        b.stop()
    finally:
        shutil.rmtree(b.data_dir, ignore_errors=True)


def create(broker, topic, **configs):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    f = admin.create_topics([NewTopic(topic, 1, 1, config={**COMPACTED, **configs})])[topic]
    f.result(30)


def produce_updates(broker, topic, rounds, model, deleted, start=0, **conf):
    """Writes `rounds` values of every key, deleting a few keys along the way; `model` and
    `deleted` track what a reader must see."""
    # Small batches, so segments roll and hold many batches (a 1 MB batch would fill one alone).
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "compression.type": "lz4",
                  "enable.idempotence": True, "batch.size": 4096, **conf})
    errors = []
    for r in range(start, start + rounds):
        for k in range(KEYS):
            key = f"key-{k}".encode()
            if k % 10 == 3 and r % 7 == 6:
                p.produce(topic, key=key, value=None, on_delivery=lambda e, m: e and errors.append(e))
                model.pop(key, None)
                deleted.add(key)
            else:
                # Random bytes: lz4 cannot shrink them, so a 16 KiB segment holds ~90 records.
                value = f"value-{k}-{r}-".encode() + os.urandom(100)
                p.produce(topic, key=key, value=value, on_delivery=lambda e, m: e and errors.append(e))
                model[key] = value
                deleted.discard(key)
    assert p.flush(60) == 0
    assert errors == []


def read_to_end(bootstrap, topic, check_crcs=True):
    """Every record of partition 0 from the beginning to the end (confluent-kafka)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "check.crcs": check_crcs, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out, deadline = [], time.time() + 60
    try:
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise AssertionError(m.error())
            out.append(m)
    finally:
        c.close()
    return out


def read_table(broker, topic):
    """Reads the partition from the beginning to its end: (table after applying every record,
    number of records, offsets)."""
    table, offsets = {}, []
    for m in read_to_end(broker.bootstrap, topic):
        offsets.append(m.offset())
        if m.value() is None:
            table.pop(m.key(), None)
        else:
            table[m.key()] = m.value()
    return table, len(offsets), offsets


def wait_compacted(broker, topic, written, most):
    """Waits until a read from the beginning returns at most `most` of the `written` records."""
    deadline = time.time() + 60
    while time.time() < deadline:
        _, n, _ = read_table(broker, topic)
        if n <= most:
            return n
        time.sleep(0.3)
    raise AssertionError(f"{topic} still reads {n} of {written} records")


def check(table, offsets, model, deleted):
    assert offsets == sorted(set(offsets)), "offsets strictly increase"
    assert table == model, "exactly the latest value of every live key"
    assert not (set(table) & deleted), "no deleted key"


def test_compacted_topic_reads_as_the_latest_value_per_key_with_confluent_kafka(cbroker, topic):
    create(cbroker, topic)
    model, deleted = {}, set()
    produce_updates(cbroker, topic, 40, model, deleted)
    written = 40 * KEYS
    # ~16 KiB segments hold ~120 records: what is left is about one record per key plus the
    # active segment.
    n = wait_compacted(cbroker, topic, written, KEYS + 400)
    table, _, offsets = read_table(cbroker, topic)
    check(table, offsets, model, deleted)
    assert n < written / 3


def test_producers_and_consumers_keep_going_while_the_cleaner_works(cbroker, topic):
    create(cbroker, topic)
    model, deleted = {}, set()
    stop, seen, problems = threading.Event(), {}, []

    def tail():
        c = Consumer({"bootstrap.servers": cbroker.bootstrap, "group.id": "tail-" + uuid.uuid4().hex,
                      "enable.auto.commit": False, "check.crcs": True})
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        last = -1
        while not stop.is_set():
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            if m.offset() <= last:
                problems.append((last, m.offset()))
            last = m.offset()
            if m.value() is None:
                seen.pop(m.key(), None)
            else:
                seen[m.key()] = m.value()
        c.close()

    t = threading.Thread(target=tail)
    t.start()
    for chunk in range(6):
        produce_updates(cbroker, topic, 10, model, deleted, start=chunk * 10)
        time.sleep(0.3)
    wait_compacted(cbroker, topic, 60 * KEYS, KEYS + 400)
    time.sleep(2)
    stop.set()
    t.join(30)
    assert problems == [], "a tailing consumer saw offsets go back"
    assert seen == model, "the tailing consumer's table is the latest value of every key"
    table, _, offsets = read_table(cbroker, topic)
    check(table, offsets, model, deleted)


def test_kafka_python_and_aiokafka_read_a_compacted_topic(cbroker, topic):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP
    create(cbroker, topic)
    model, deleted = {}, set()
    p = KafkaProducer(bootstrap_servers=cbroker.bootstrap, compression_type="gzip", linger_ms=5,
                      batch_size=4096)
    for r in range(30):
        for k in range(KEYS):
            key = f"key-{k}".encode()
            value = None if (k % 10 == 3 and r % 7 == 6) else f"kp-{k}-{r}".encode() + os.urandom(100)
            p.send(topic, key=key, value=value)
            if value is None:
                model.pop(key, None)
                deleted.add(key)
            else:
                model[key] = value
                deleted.discard(key)
    p.flush(30)
    p.close()
    wait_compacted(cbroker, topic, 30 * KEYS, KEYS + 400)

    c = KafkaConsumer(bootstrap_servers=cbroker.bootstrap, enable_auto_commit=False, group_id=None)
    tp = KTP(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    end = c.end_offsets([tp])[tp]
    table, offsets = {}, []
    deadline = time.time() + 30
    while (not offsets or offsets[-1] < end - 1) and time.time() < deadline:
        for msgs in c.poll(timeout_ms=1000).values():
            for m in msgs:
                offsets.append(m.offset)
                if m.value is None:
                    table.pop(m.key, None)
                else:
                    table[m.key] = m.value
    c.close()
    check(table, offsets, model, deleted)

    async def aio():
        from aiokafka import AIOKafkaConsumer
        from aiokafka import TopicPartition as ATP
        ac = AIOKafkaConsumer(bootstrap_servers=cbroker.bootstrap, enable_auto_commit=False)
        await ac.start()
        try:
            atp = ATP(topic, 0)
            ac.assign([atp])
            await ac.seek_to_beginning(atp)
            aend = (await ac.end_offsets([atp]))[atp]
            t, offs = {}, []
            while not offs or offs[-1] < aend - 1:
                batch = await ac.getmany(atp, timeout_ms=1000)
                for m in batch.get(atp, []):
                    offs.append(m.offset)
                    if m.value is None:
                        t.pop(m.key, None)
                    else:
                        t[m.key] = m.value
            return t, offs
        finally:
            await ac.stop()

    atable, aoffsets = asyncio.run(asyncio.wait_for(aio(), 60))
    check(atable, aoffsets, model, deleted)
    assert aoffsets == offsets


def test_kcat_writes_keyed_updates_and_tombstones(cbroker, topic):
    create(cbroker, topic)
    model = {}
    lines = []
    for r in range(25):
        for k in range(KEYS):
            key = f"key-{k}"
            if k % 10 == 3 and r == 24:
                lines.append(f"{key}:")
                model.pop(key, None)
            else:
                value = f"kcat-{k}-{r}-" + os.urandom(60).hex()
                lines.append(f"{key}:{value}")
                model[key] = value
    # -Z: an empty value is sent as NULL (a tombstone).
    kcat("-b", cbroker.bootstrap, "-P", "-t", topic, "-K:", "-Z", "-z", "snappy", "-X", "batch.size=4096",
         input=("\n".join(lines) + "\n").encode())
    wait_compacted(cbroker, topic, len(lines), KEYS + 400)
    out = kcat("-b", cbroker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-Z",
               "-f", "%o\t%k\t%S\t%s\n").decode()
    table, offsets = {}, []
    for line in out.splitlines():
        offset, key, size, value = line.split("\t", 3)
        offsets.append(int(offset))
        if size == "-1":
            table.pop(key, None)
        else:
            table[key] = value
    assert offsets == sorted(set(offsets))
    assert table == model


def test_keyless_records_are_refused_with_invalid_record(cbroker, topic):
    create(cbroker, topic)
    errors = []
    p = Producer({"bootstrap.servers": cbroker.bootstrap, "retries": 0})
    p.produce(topic, value=b"no key", on_delivery=lambda e, m: errors.append(e))
    p.flush(30)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.INVALID_RECORD, errors[0]
    _, n, _ = read_table(cbroker, topic)
    assert n == 0


def test_a_topic_switched_to_compact_is_cleaned_and_describe_shows_the_keys(cbroker, topic):
    admin = AdminClient({"bootstrap.servers": cbroker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": "16384"})])[topic].result(30)
    model, deleted = {}, set()
    produce_updates(cbroker, topic, 20, model, deleted)
    time.sleep(1)
    _, before, _ = read_table(cbroker, topic)
    assert before == 20 * KEYS, "a delete-policy topic is not compacted"
    res = ConfigResource("TOPIC", topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET),
    ])
    admin.incremental_alter_configs([res])[res].result(30)
    wait_compacted(cbroker, topic, before, KEYS + 400)
    table, _, offsets = read_table(cbroker, topic)
    assert offsets == sorted(set(offsets))
    # Tombstones stay a day by default on this topic: the table still drops deleted keys.
    assert table == model
    described = admin.describe_configs([ConfigResource("TOPIC", topic)])
    entries = list(described.values())[0].result(30)
    assert entries["cleanup.policy"].value == "compact"
    assert entries["min.cleanable.dirty.ratio"].value == "0.01"
    assert entries["delete.retention.ms"].value == "86400000"
    assert entries["min.compaction.lag.ms"].value == "0"
    assert entries["max.compaction.lag.ms"].value == "9223372036854775807"


def test_sigkill_while_cleaning_keeps_the_compacted_view(topic):
    """Many rounds of: write keyed updates, SIGKILL at a random moment while the cleaner works,
    restart. Every acknowledged latest value survives, offsets still increase, CRCs check."""
    rng = random.Random(20261201)
    b = Broker(overrides=["log.cleaner.backoff.ms=0", "log.flush.interval.ms=50"])
    try:
        create(b, topic, **{"segment.bytes": "4096"})
        model, deleted = {}, set()
        for rnd in range(8):
            produce_updates(b, topic, 8, model, deleted, start=rnd * 8, acks="all")
            time.sleep(rng.uniform(0.05, 1.0))
            b.kill()
            b.start()
            table, _, offsets = read_table(b, topic)
            assert offsets == sorted(set(offsets)), f"round {rnd}"
            assert table == model, f"round {rnd}: the latest value of every key survives"
        with open(b.log_path) as f:
            log = f.read()
        assert "log cleaned" in log, "the cleaner ran between the kills"
    finally:
        b.stop()
        shutil.rmtree(b.data_dir, ignore_errors=True)


def offsets_partition_records(bootstrap):
    return len(read_to_end(bootstrap, "__consumer_offsets", check_crcs=False))


def test_thousands_of_commits_compact_to_about_one_record_per_partition(cbroker, topic):
    admin = AdminClient({"bootstrap.servers": cbroker.bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    group = "commits-" + uuid.uuid4().hex[:8]
    c = Consumer({"bootstrap.servers": cbroker.bootstrap, "group.id": group, "enable.auto.commit": False})
    commits = 3000
    for i in range(commits):
        c.commit(offsets=[TopicPartition(topic, i % 4, i)], asynchronous=False)
    c.close()
    deadline = time.time() + 60
    while True:
        n = offsets_partition_records(cbroker.bootstrap)
        # One record per group-partition below the active segment, plus the active segment's.
        if n <= 4 + 400 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert n <= 4 + 400, f"__consumer_offsets still holds {n} records after {commits} commits"
    want = {p: max(i for i in range(commits) if i % 4 == p) for p in range(4)}
    cbroker.restart()
    c = Consumer({"bootstrap.servers": cbroker.bootstrap, "group.id": group})
    got = c.committed([TopicPartition(topic, p) for p in range(4)], timeout=30)
    c.close()
    assert {tp.partition: tp.offset for tp in got} == want


def test_committed_offsets_survive_a_coordinator_failover_after_compaction():
    """Thousands of commits compacted on every replica of the offsets partition; then the
    coordinator dies, and the new one loads about one record per partition and answers the
    latest commits."""
    from conftest import Cluster
    c = Cluster(extra="offsets.topic.num.partitions=1\noffsets.topic.segment.bytes=16384\n"
                      "offsets.topic.replication.factor=3\nlog.cleaner.backoff.ms=200\n")
    try:
        admin = AdminClient({"bootstrap.servers": c.all})
        topic = "t-" + uuid.uuid4().hex[:8]
        admin.create_topics([NewTopic(topic, 4, 3)])[topic].result(30)
        group = "failover-" + uuid.uuid4().hex[:8]
        consumer = Consumer({"bootstrap.servers": c.all, "group.id": group, "enable.auto.commit": False})
        commits = 2000
        for i in range(commits):
            consumer.commit(offsets=[TopicPartition(topic, i % 4, i)], asynchronous=False)
        consumer.close()
        md = admin.list_topics("__consumer_offsets", timeout=10)
        leader = md.topics["__consumer_offsets"].partitions[0].leader
        deadline = time.time() + 60
        while True:
            n = offsets_partition_records(c.bootstrap(leader))
            if n <= 4 + 400 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert n <= 4 + 400, f"the offsets partition still holds {n} records"
        time.sleep(1)  # the followers' cleaners take their own rounds
        c.kill(leader)
        want = {p: max(i for i in range(commits) if i % 4 == p) for p in range(4)}
        survivors = ",".join(c.bootstrap(i) for i in c.ports if i != leader)
        got, deadline = None, time.time() + 60
        while time.time() < deadline:
            probe = Consumer({"bootstrap.servers": survivors, "group.id": group})
            try:
                got = {tp.partition: tp.offset for tp in
                       probe.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)}
            except Exception:  # noqa: BLE001 - the coordinator is moving
                got = None
            finally:
                probe.close()
            if got == want:
                break
            time.sleep(0.5)
        assert got == want
        loads = []
        for i in c.ports:
            if i == leader:
                continue
            with open(os.path.join(c.dir, f"node{i}.log")) as f:
                loads += [line for line in f if "loaded groups; now their coordinator" in line]
        assert loads, "a survivor became the coordinator"
        records = int(loads[-1].split("records=")[1].split()[0])
        assert records <= 4 + 400, f"the new coordinator replayed {records} records, not the live state"
    finally:
        c.stop()
        shutil.rmtree(c.dir, ignore_errors=True)


def test_describe_log_dirs_with_kafka_python_shows_replica_sizes(cbroker, topic):
    """kafka-python's admin describe_log_dirs (its newest version it and samsa share) decodes
    samsa's answer, tagged cleaner field included, and sizes grow with what was written."""
    from kafka.admin import KafkaAdminClient
    create(cbroker, topic)
    model, deleted = {}, set()
    produce_updates(cbroker, topic, 5, model, deleted)
    admin = KafkaAdminClient(bootstrap_servers=cbroker.bootstrap)
    try:
        answers = admin.describe_log_dirs({topic: [0]})
    finally:
        admin.close()
    (answer,) = answers
    (log_dir,) = answer["log_dirs"]
    assert log_dir["error_code"] == 0 and log_dir["log_dir"].endswith("data")
    (entry,) = [t for t in log_dir["topics"] if t["name"] == topic]
    (part,) = entry["partitions"]
    assert part["partition_index"] == 0 and part["partition_size"] > 5 * KEYS * 100
    assert part["offset_lag"] == 0
