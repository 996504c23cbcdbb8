"""Transactions while brokers die (three nodes, RF=3, min.insync.replicas=2): the transaction
coordinator's broker and then a partition leader are SIGKILLed while a transactional producer
commits and aborts transactions spanning three partitions. Afterwards a read_committed reader
finds every acknowledged commit whole, no aborted transaction, every transaction whose end was
unknown all or nothing, and no value twice."""
import threading
import time
import uuid
from collections import Counter

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_for
from test_group_failover import java_hash, quietly

PARTITIONS = 3
TXN_PARTITIONS = 3


def coordinator_of(bootstrap, txn_id):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics("__transaction_state", timeout=10)
    parts = md.topics["__transaction_state"].partitions
    return parts[(java_hash(txn_id) & 0x7FFFFFFF) % len(parts)].leader


def leader_of(bootstrap, topic, p):
    return AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10).topics[topic].partitions[p].leader


class TxnWriter(threading.Thread):
    def __init__(self, bootstrap, topic, txn_id):
        super().__init__(daemon=True)
        self.topic, self.stopped = topic, threading.Event()
        self.conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                     "transaction.timeout.ms": 30000, "request.timeout.ms": 5000}
        self.outcomes = []  # (kind, [values]) kind: commit | abort | unknown
        self.p = Producer(self.conf)
        self.p.init_transactions(60)

    def run(self):
        n = 0
        while not self.stopped.is_set():
            vs = [f"t{n}-{i}" for i in range(PARTITIONS)]
            abort = n % 4 == 3
            n += 1
            try:
                self.p.begin_transaction()
                for i, v in enumerate(vs):
                    self.p.produce(self.topic, value=v, partition=i)
                if abort:
                    self.p.abort_transaction(60)
                    self.outcomes.append(("abort", vs))
                else:
                    self.p.commit_transaction(60)
                    self.outcomes.append(("commit", vs))
            except KafkaException as e:
                self.outcomes.append(("unknown", vs))
                err = e.args[0]
                if err.fatal():
                    self.p = Producer(self.conf)
                    self.p.init_transactions(60)
                else:
                    try:
                        self.p.abort_transaction(60)
                    except KafkaException:
                        time.sleep(0.5)
            time.sleep(0.02)


def read_committed(bootstrap, topic, expect):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4()}",
                  "isolation.level": "read_committed", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got, eof, deadline = [], set(), time.time() + 60
    while time.time() < deadline and not (len(eof) == PARTITIONS and len(got) >= expect):
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:
                eof.add(m.partition())
            continue
        eof.discard(m.partition())
        got.append(m.value().decode())
    c.close()
    return got


def test_transactions_survive_sigkills_of_their_coordinator_and_a_partition_leader(txn_cluster):
    c = txn_cluster
    topic, txn_id = f"tx-{uuid.uuid4().hex[:8]}", f"id-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": c.all})
    admin.create_topics([NewTopic(topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[topic].result(30)
    w = TxnWriter(c.all, topic, txn_id)
    w.start()
    try:
        wait_for(lambda: len(w.outcomes) >= 20, 60, what="transactions before the first kill")
        victim = coordinator_of(c.all, txn_id)
        c.kill(victim)
        before = len(w.outcomes)
        wait_for(lambda: sum(k == "commit" for k, _ in w.outcomes[before:]) >= 10, 120,
                 what="commits on the new coordinator")
        c.start(victim)
        leader = quietly(leader_of, c.all, topic, 1, default=-1)
        if leader > 0:
            c.kill(leader)
            before = len(w.outcomes)
            wait_for(lambda: sum(k == "commit" for k, _ in w.outcomes[before:]) >= 10, 120,
                     what="commits after the partition leader died")
            c.start(leader)
        wait_for(lambda: len(w.outcomes) >= before + 20, 60, what="transactions after the restarts")
    finally:
        w.stopped.set()
        w.join(120)
    kinds = Counter(k for k, _ in w.outcomes)
    print(f"transactions: {dict(kinds)}")
    committed = [v for k, vs in w.outcomes if k == "commit" for v in vs]
    got = read_committed(c.all, topic, len(committed))
    counts = Counter(got)
    assert not [v for v, n in counts.items() if n > 1], "a value committed twice"
    seen = set(got)
    for kind, vs in w.outcomes:
        present = sum(v in seen for v in vs)
        if kind == "commit":
            assert present == len(vs), f"committed transaction {vs} lost or torn ({present}/{len(vs)})"
        elif kind == "abort":
            assert present == 0, f"aborted transaction {vs} read by read_committed"
        else:
            assert present in (0, len(vs)), f"transaction {vs} with an unknown end is torn"
    written = {v for _, vs in w.outcomes for v in vs}
    assert seen <= written, f"values no transaction wrote: {sorted(seen - written)[:5]}"
