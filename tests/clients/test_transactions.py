"""Transactions with real clients (KIP-98): confluent-kafka's transactional producer across
partitions and topics, commit and abort, fencing by a second instance with the same
transactional id, offsets sent to the transaction, and read_committed / read_uncommitted
consumers of confluent-kafka, kafka-python and aiokafka, plus kcat (librdkafka consumes
read_committed by default)."""
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, kcat


@pytest.fixture(scope="module")
def tbroker():
    b = Broker(overrides=["transaction.state.log.num.partitions=3", "offsets.topic.num.partitions=3",
                          "transaction.abort.timed.out.transaction.cleanup.interval.ms=500"])
    yield b
    try:
        b.stop()
    finally:
        shutil.rmtree(b.data_dir, ignore_errors=True)


def create(broker, *topics, partitions=3):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(t, partitions, 1) for t in topics]).values():
        f.result(30)


def txn_producer(broker, txn_id, **conf):
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id,
                  "linger.ms": 5, **conf})
    p.init_transactions(30)
    return p


def consume_all(broker, topic, isolation, expect_at_least=0, timeout_s=15):
    """Every value of `topic` from the beginning, read with `isolation`; reads until the
    partitions are drained (at least `expect_at_least` values, or the timeout)."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{uuid.uuid4()}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    meta = c.list_topics(topic, timeout=10).topics[topic]
    parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
    c.assign(parts)
    values, eof = [], set()
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            if len(eof) == len(parts) and len(values) >= expect_at_least:
                break
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                if len(eof) == len(parts) and len(values) >= expect_at_least:
                    break
            continue
        values.append(m.value().decode())
    c.close()
    return values


def test_committed_transactions_are_read_and_aborted_ones_are_not(tbroker):
    a, b = f"txa-{uuid.uuid4()}", f"txb-{uuid.uuid4()}"
    create(tbroker, a, b)
    p = txn_producer(tbroker, f"id-{uuid.uuid4()}")
    p.begin_transaction()
    for i in range(30):
        p.produce(a, value=f"c1-{i}", partition=i % 3)
        p.produce(b, value=f"c1-{i}", partition=i % 3)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(20):
        p.produce(a, value=f"ab-{i}", partition=i % 3)
    p.flush(10)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(a, value=f"c2-{i}", partition=i % 3)
    p.commit_transaction(30)

    committed = consume_all(tbroker, a, "read_committed", expect_at_least=40)
    assert sorted(committed) == sorted([f"c1-{i}" for i in range(30)] + [f"c2-{i}" for i in range(10)])
    everything = consume_all(tbroker, a, "read_uncommitted", expect_at_least=60)
    assert len(everything) == 60 and sum(v.startswith("ab-") for v in everything) == 20
    assert sorted(consume_all(tbroker, b, "read_committed", expect_at_least=30)) == sorted(
        f"c1-{i}" for i in range(30))
    # kcat is librdkafka: read_committed unless told otherwise.
    out = kcat("-b", tbroker.bootstrap, "-C", "-t", a, "-e", "-q", "-o", "beginning",
               "-X", "isolation.level=read_committed")
    assert sorted(out.decode().split()) == sorted(committed)


def test_an_open_transaction_holds_back_read_committed_until_it_commits(tbroker):
    t = f"txo-{uuid.uuid4()}"
    create(tbroker, t, partitions=1)
    plain = Producer({"bootstrap.servers": tbroker.bootstrap})
    p = txn_producer(tbroker, f"id-{uuid.uuid4()}")
    p.begin_transaction()
    p.produce(t, value="in-txn", partition=0)
    p.flush(10)
    plain.produce(t, value="after", partition=0)
    plain.flush(10)
    # The open transaction's first offset is the last stable offset: nothing past it is read.
    assert consume_all(tbroker, t, "read_committed", timeout_s=3) == []
    assert consume_all(tbroker, t, "read_uncommitted", expect_at_least=2) == ["in-txn", "after"]
    c = Consumer({"bootstrap.servers": tbroker.bootstrap, "group.id": f"g-{uuid.uuid4()}",
                  "isolation.level": "read_committed"})
    lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)
    c.close()
    assert (lo, hi) == (0, 0), "ListOffsets latest under read_committed is the LSO"
    p.commit_transaction(30)
    assert consume_all(tbroker, t, "read_committed", expect_at_least=2) == ["in-txn", "after"]


def test_a_second_instance_with_the_same_id_fences_the_first_and_aborts_its_transaction(tbroker):
    t = f"txf-{uuid.uuid4()}"
    create(tbroker, t, partitions=1)
    txn_id = f"id-{uuid.uuid4()}"
    old = txn_producer(tbroker, txn_id)
    old.begin_transaction()
    old.produce(t, value="zombie", partition=0)
    old.flush(10)
    new = txn_producer(tbroker, txn_id)  # bumps the epoch, aborts the open transaction
    new.begin_transaction()
    new.produce(t, value="fresh", partition=0)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        old.produce(t, value="late", partition=0)
        old.commit_transaction(10)
    assert e.value.args[0].fatal() or "fenced" in str(e.value).lower()
    assert consume_all(tbroker, t, "read_committed", expect_at_least=1) == ["fresh"]


def test_offsets_sent_to_a_transaction_commit_with_it_and_vanish_on_abort(tbroker):
    src, dst = f"src-{uuid.uuid4()}", f"dst-{uuid.uuid4()}"
    create(tbroker, src, dst, partitions=1)
    plain = Producer({"bootstrap.servers": tbroker.bootstrap})
    for i in range(10):
        plain.produce(src, value=f"in-{i}", partition=0)
    plain.flush(10)
    group = f"g-{uuid.uuid4()}"
    c = Consumer({"bootstrap.servers": tbroker.bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed"})
    c.assign([TopicPartition(src, 0, 0)])
    msgs = []
    while len(msgs) < 10:
        m = c.poll(5)
        assert m is not None
        msgs.append(m)
    p = txn_producer(tbroker, f"id-{uuid.uuid4()}")
    p.begin_transaction()
    for m in msgs[:5]:
        p.produce(dst, value=m.value(), partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 5)], c.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    assert c.committed([TopicPartition(src, 0)], timeout=10)[0].offset == 5
    p.begin_transaction()
    for m in msgs[5:]:
        p.produce(dst, value=m.value(), partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 10)], c.consumer_group_metadata(), 30)
    p.abort_transaction(30)
    assert c.committed([TopicPartition(src, 0)], timeout=10)[0].offset == 5, "aborted offsets vanish"
    c.close()
    assert consume_all(tbroker, dst, "read_committed", expect_at_least=5) == [f"in-{i}" for i in range(5)]


def test_kafka_python_and_aiokafka_transactional_producers_commit_and_abort(tbroker):
    import asyncio
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from kafka import KafkaConsumer, KafkaProducer

    t = f"txp-{uuid.uuid4()}"
    create(tbroker, t, partitions=2)
    kp = KafkaProducer(bootstrap_servers=tbroker.bootstrap, transactional_id=f"kp-{uuid.uuid4()}")
    kp.init_transactions()
    kp.begin_transaction()
    for i in range(6):
        kp.send(t, value=f"kp-ok-{i}".encode(), partition=i % 2)
    kp.commit_transaction()
    kp.begin_transaction()
    kp.send(t, value=b"kp-aborted", partition=0)
    kp.flush()
    kp.abort_transaction()
    kp.close()

    async def aio():
        p = AIOKafkaProducer(bootstrap_servers=tbroker.bootstrap, transactional_id=f"aio-{uuid.uuid4()}")
        await p.start()
        try:
            async with p.transaction():
                for i in range(4):
                    await p.send_and_wait(t, f"aio-ok-{i}".encode(), partition=i % 2)
            await p.begin_transaction()
            await p.send_and_wait(t, b"aio-aborted", partition=1)
            await p.abort_transaction()
        finally:
            await p.stop()
        c = AIOKafkaConsumer(t, bootstrap_servers=tbroker.bootstrap, isolation_level="read_committed",
                             auto_offset_reset="earliest", group_id=None)
        await c.start()
        got = []
        try:
            end = asyncio.get_event_loop().time() + 15
            while len(got) < 10 and asyncio.get_event_loop().time() < end:
                batch = await c.getmany(timeout_ms=500)
                for msgs in batch.values():
                    got.extend(m.value.decode() for m in msgs)
        finally:
            await c.stop()
        return got

    aio_read = asyncio.run(aio())
    want = sorted([f"kp-ok-{i}" for i in range(6)] + [f"aio-ok-{i}" for i in range(4)])
    assert sorted(aio_read) == want
    kc = KafkaConsumer(t, bootstrap_servers=tbroker.bootstrap, isolation_level="read_committed",
                       auto_offset_reset="earliest", consumer_timeout_ms=3000)
    assert sorted(m.value.decode() for m in kc) == want
    kc.close()
    everything = consume_all(tbroker, t, "read_uncommitted", expect_at_least=12)
    assert {"kp-aborted", "aio-aborted"} <= set(everything)


def samsa_cli(*args):
    import subprocess
    from conftest import SAMSA_BIN
    r = subprocess.run([SAMSA_BIN, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"samsa {args}: {r.stderr}"
    return r.stdout


def test_the_cli_lists_describes_and_aborts_a_hanging_transaction(tbroker):
    t = f"txh-{uuid.uuid4()}"
    create(tbroker, t, partitions=1)
    txn_id = f"hang-{uuid.uuid4()}"
    p = txn_producer(tbroker, txn_id)
    p.begin_transaction()
    p.produce(t, value="hanging", partition=0)
    p.flush(10)
    bs = ["--bootstrap-server", tbroker.bootstrap]
    assert any(txn_id in line and "Ongoing" in line
               for line in samsa_cli("transactions", "list", *bs).splitlines())
    described = samsa_cli("transactions", "describe", txn_id, *bs).splitlines()
    assert described[0].split()[:5] == ["CoordinatorId", "TransactionalId", "ProducerId",
                                        "ProducerEpoch", "TransactionState"]
    assert "Ongoing" in described[1] and f"{t}-0" in described[1]
    producers = samsa_cli("producers", "describe", t, *bs).splitlines()
    assert producers[1].split()[-1] == "0", "the open transaction starts at offset 0"
    plain = Producer({"bootstrap.servers": tbroker.bootstrap})
    plain.produce(t, value="after", partition=0)
    plain.flush(10)
    assert consume_all(tbroker, t, "read_committed", timeout_s=3) == []
    out = samsa_cli("transactions", "abort", "--topic", t, "--partition", "0", "--start-offset", "0", *bs)
    assert "Aborted" in out
    assert consume_all(tbroker, t, "read_committed", expect_at_least=1) == ["after"]
    unknown = __import__("subprocess").run(
        [__import__("conftest").SAMSA_BIN, "transactions", "describe", "no-such-id", *bs],
        capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "TransactionalIdNotFound" in unknown.stderr


PIPELINE = os.path.join(os.path.dirname(__file__), "txn_pipeline_worker.py")


def test_a_pipeline_killed_mid_transaction_and_restarted_outputs_every_input_exactly_once(tbroker):
    """Consume-transform-produce with send_offsets_to_transaction: SIGKILLed while a transaction
    is open (several times), restarted with the same transactional id and group instance; the
    output read with read_committed holds every input exactly once."""
    src, dst = f"psrc-{uuid.uuid4()}", f"pdst-{uuid.uuid4()}"
    create(tbroker, src, dst, partitions=2)
    plain = Producer({"bootstrap.servers": tbroker.bootstrap, "linger.ms": 5})
    inputs = [f"in-{i:05d}" for i in range(1500)]
    for i, v in enumerate(inputs):
        plain.produce(src, value=v, partition=i % 2)
    plain.flush(30)
    ids = [f"--{k}={v}" for k, v in {
        "bootstrap": tbroker.bootstrap, "src": src, "dst": dst, "group": f"pipe-{uuid.uuid4()}",
        "instance": "pipeline-1", "txn-id": f"pipe-{uuid.uuid4()}"}.items()]

    def start(pause_ms):
        return subprocess.Popen([sys.executable, PIPELINE, *ids, f"--pause-ms={pause_ms}",
                                 "--batch=25", "--idle-s=4"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    kills = 0
    for round_ in range(3):
        w = start(pause_ms=150)
        # Let it commit a few transactions, then kill it while one is open.
        seen = 0
        deadline = time.time() + 60
        while seen < 2 and time.time() < deadline:
            line = w.stdout.readline()
            if not line:
                break
            seen += line.startswith("committed")
        time.sleep(0.08)  # inside the next transaction's pause
        w.send_signal(signal.SIGKILL)
        w.wait(10)
        kills += 1
    final = start(pause_ms=0)
    out, _ = final.communicate(timeout=240)
    assert final.returncode == 0, out
    assert kills == 3
    got = consume_all(tbroker, dst, "read_committed", expect_at_least=len(inputs), timeout_s=30)
    assert len(got) == len(inputs), f"{len(got)} outputs for {len(inputs)} inputs"
    assert sorted(got) == sorted(v.upper() for v in inputs), "every input exactly once"
    everything = consume_all(tbroker, dst, "read_uncommitted", expect_at_least=len(inputs))
    # The kills landed inside transactions: their records are in the log, aborted when the
    # restarted instance fenced the old one, and never read by read_committed.
    assert len(everything) > len(got), "no kill landed inside a transaction"


def test_a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced(tbroker):
    t = f"txt-{uuid.uuid4()}"
    create(tbroker, t, partitions=1)
    txn_id = f"slow-{uuid.uuid4()}"
    p = txn_producer(tbroker, txn_id, **{"transaction.timeout.ms": 2000})
    p.begin_transaction()
    p.produce(t, value="abandoned", partition=0)
    p.flush(10)
    plain = Producer({"bootstrap.servers": tbroker.bootstrap})
    plain.produce(t, value="after", partition=0)
    plain.flush(10)
    # The coordinator aborts it (epoch bumped) within the timeout plus a cleanup interval.
    assert consume_all(tbroker, t, "read_committed", expect_at_least=1, timeout_s=20) == ["after"]
    described = samsa_cli("transactions", "describe", txn_id, "--bootstrap-server", tbroker.bootstrap)
    row = described.splitlines()[1].split()
    assert row[3:5] == ["1", "CompleteAbort"], row
    with pytest.raises(KafkaException):
        p.commit_transaction(10)
