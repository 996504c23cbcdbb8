"""The group coordinator's broker dies while the group is consuming and committing: the group re-forms
on the new coordinator (the new leader of the group's `__consumer_offsets` partition, elected from
its ISR), no committed offset moves backwards, and every produced record is processed. Then the
whole cluster restarts and the committed offsets are still there.
"""
import threading
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient

from conftest import GroupWorker, wait_for

PARTITIONS = 4
OFFSETS_PARTITIONS = 50


def java_hash(s):
    """Java's String.hashCode, as an unsigned 32-bit value."""
    h = 0
    b = s.encode("utf-16-be")
    for i in range(0, len(b), 2):
        h = (31 * h + int.from_bytes(b[i:i + 2], "big")) & 0xFFFFFFFF
    return h


def coordinator_of(bootstrap, group):
    """The broker leading the group's __consumer_offsets partition (Kafka's placement rule)."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics("__consumer_offsets", timeout=10)
    partition = (java_hash(group) & 0x7FFFFFFF) % len(md.topics["__consumer_offsets"].partitions)
    return md.topics["__consumer_offsets"].partitions[partition].leader


def quietly(f, *args, default=None):
    """f(*args), or `default` while the cluster is failing over."""
    try:
        return f(*args)
    except Exception:  # noqa: BLE001
        return default


def committed(bootstrap, group):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        return {tp.partition: om.offset for tp, om in admin.list_group_offsets(group)[group].items()}
    finally:
        admin.close()


class Sampler(threading.Thread):
    """Reads the committed offsets every 200 ms from its own admin client; failures (during the
    failover) are skipped, every successful read is kept."""

    def __init__(self, bootstrap, group):
        super().__init__(daemon=True)
        self.bootstrap, self.group = bootstrap, group
        self.samples = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            try:
                self.samples.append(committed(self.bootstrap, self.group))
            except Exception:  # noqa: BLE001 - the coordinator is allowed to be away for a while
                pass
            time.sleep(0.2)


def test_the_group_survives_its_coordinators_sigkill_and_a_full_cluster_restart(group_cluster):
    c = group_cluster
    topic, group = "t-" + uuid.uuid4().hex[:8], "g-" + uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": c.all})
    for f in admin.create_topics([NewTopic(topic, PARTITIONS, 3)]).values():
        f.result(timeout=30)
    producer = Producer({"bootstrap.servers": c.all, "acks": "all", "enable.idempotence": True})
    produced = []
    stop_producing = threading.Event()

    def produce():
        i = 0
        while not stop_producing.is_set():
            v = f"v-{i}"
            producer.produce(topic, value=v.encode(), partition=i % PARTITIONS)
            produced.append(v)
            i += 1
            producer.poll(0)
            time.sleep(0.01)
        assert producer.flush(60) == 0

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    # A commit waits up to offsets.commit.timeout.ms for the ISR, and heartbeats queue behind it on
    # the coordinator connection (as in Kafka): the session must outlast that.
    workers = [GroupWorker("confluent", c.all, group, topic, "--commit", "--session-ms", 10000) for _ in range(2)]
    sampler = Sampler(c.all, group)
    try:
        wait_for(lambda: all(w.assignment for w in workers) and sum(len(w.assignment) for w in workers) == 4,
                 90, what="the group to form")
        wait_for(lambda: all(w.committed for w in workers), 30, what="commits from both members")
        victim = coordinator_of(c.all, group)
        before = committed(c.all, group)
        sampler.start()
        c.kill(victim)
        killed_at = time.time()
        # The group re-forms on another broker and commits move past what was committed before.
        wait_for(lambda: quietly(coordinator_of, c.all, group, default=victim) not in (victim, -1), 60,
                 what="a new coordinator")
        wait_for(lambda: all(quietly(committed, c.all, group, default={}).get(p, -1) > before.get(p, -1)
                             for p in range(PARTITIONS)),
                 90, what="commits advancing on the new coordinator")
        print(f"commits resumed {time.time() - killed_at:.2f}s after the coordinator (node {victim}) was killed")
        c.start(victim)
        stop_producing.set()
        writer.join(timeout=90)
        wait_for(lambda: {r["value"] for w in workers for r in w.records} >= set(produced), 90,
                 what="every produced record processed")
        sampler.stopped.set()
        sampler.join(timeout=10)
        final = wait_for(lambda: (lambda o: o if sum(o.values()) == len(produced) else None)(
            quietly(committed, c.all, group, default={})), 30, what="final commits covering every record")
    finally:
        stop_producing.set()
        for w in workers:
            w.stop()
    # Reads during the failover may time out (the sampler skips those, and on a loaded machine
    # few succeed); the pre-kill offsets, whatever was read meanwhile and the final offsets must
    # never go backwards.
    history = [before, *sampler.samples, final]
    print(f"committed offsets read {len(history)} times across the failover")
    for earlier, later in zip(history, history[1:]):
        for p, offset in earlier.items():
            assert later.get(p, -1) >= offset, f"committed offset of partition {p} went back: {offset} -> {later.get(p)}"
    c.restart_all()
    assert wait_for(lambda: quietly(committed, c.all, group), 60, what="offsets after the restart") == final
