"""Consumer groups with real clients: confluent-kafka, kafka-python and aiokafka members (each in its
own process, see group_worker.py) and kcat's balanced consumer, against one `samsa dev` broker.

What the Kafka literature teaches, checked per client: partitions are shared inside a group and a
surplus member idles; a crashed member's partitions move after its session timeout, a leaving
member's at once; every group
gets every record; commit-after-processing resumes exactly where the last member stopped
(at-least-once, here with a clean stop: exactly once); auto-commit stores what was consumed.
"""
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient

from conftest import SAMSA_BIN, GroupWorker, diagnose, kcat, wait_for

CLIENTS = ["confluent", "kafka-python", "aiokafka"]
PARTITIONS = 4


def create_topic(bootstrap, topic, partitions=PARTITIONS):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(timeout=30)


def produce(bootstrap, topic, n, prefix="v"):
    """n records spread round-robin over the partitions; returns the values."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    values = [f"{prefix}-{i}" for i in range(n)]
    for i, v in enumerate(values):
        p.produce(topic, value=v.encode(), partition=i % PARTITIONS)
    assert p.flush(30) == 0
    return values


def committed_offsets(bootstrap, group):
    """The group's committed offsets per partition, read by another client (kafka-python admin)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {tp.partition: om.offset for tp, om in admin.list_group_offsets(group)[group].items()}
    finally:
        admin.close()


def balanced(workers, partitions=PARTITIONS):
    """Every partition owned by exactly one worker, at most one each, the rest idle."""
    assignments = [w.assignment for w in workers]
    if any(a is None for a in assignments):
        return False
    owned = sorted(p for a in assignments for p in a)
    return owned == list(range(partitions)) and all(len(a) <= 1 for a in assignments)


@pytest.fixture
def group():
    return "g-" + uuid.uuid4().hex[:10]


@pytest.mark.parametrize("client", CLIENTS)
def test_four_members_get_one_partition_each_and_a_fifth_idles(group_broker, topic, group, client):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    workers = [GroupWorker(client, bs, group, topic, "--session-ms", 6000) for _ in range(5)]
    try:
        wait_for(lambda: balanced(workers), 90, what="4 members with one partition each and one idle")
        idle = [w for w in workers if w.assignment == []]
        assert len(idle) == 1
        values = produce(bs, topic, 40)
        wait_for(lambda: sum(len(w.records) for w in workers) >= 40, 30, what="all records consumed")
        for w in workers:
            assert {r["p"] for r in w.records} <= set(w.assignment), "a member read a partition it does not own"
        assert sorted(r["value"] for w in workers for r in w.records) == sorted(values)
        admin = KafkaAdminClient(bootstrap_servers=bs)
        try:
            described = admin.describe_groups([group])[group]
            assert described["group_state"] == "Stable"
            assert len(described["members"]) == 5
            assert group in [g["group_id"] for g in admin.list_groups()]
        finally:
            admin.close()
    finally:
        for w in workers:
            w.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_crashed_members_partitions_move_after_its_session_timeout(group_broker, topic, group, client):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    session_ms = 2000
    a = GroupWorker(client, bs, group, topic, "--session-ms", session_ms)
    b = GroupWorker(client, bs, group, topic, "--session-ms", session_ms)
    try:
        try:
            wait_for(lambda: a.assignment and b.assignment and len(a.assignment) + len(b.assignment) == 4,
                     90, what="two members sharing four partitions")
        except AssertionError:
            diagnose([a, b], group_broker)
            raise
        a.kill()  # no LeaveGroup: only the session timeout tells the coordinator
        killed_at = time.time()
        try:
            wait_for(lambda: b.assignment == [0, 1, 2, 3], 60, what="the survivor owning every partition")
        except AssertionError:
            diagnose([a, b], group_broker)
            raise
        elapsed = time.time() - killed_at
        print(f"{client}: partitions moved {elapsed:.2f}s after SIGKILL (session {session_ms} ms)")
        assert elapsed >= session_ms / 1000 * 0.8, "moved before the session could have expired"
        values = produce(bs, topic, 20)
        wait_for(lambda: len(b.records) >= 20, 30, what="the survivor reading every partition")
        assert sorted(r["value"] for r in b.records) == sorted(values)
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_leaving_member_hands_its_partitions_over_at_once(group_broker, topic, group, client):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    session_ms = 12000  # heartbeats every 4 s: the first rebalance waits for one
    stays = GroupWorker(client, bs, group, topic, "--session-ms", session_ms)
    leaves = None
    try:
        wait_for(lambda: stays.assignment == [0, 1, 2, 3], 60, what="the first member owning every partition")
        # Joins second, so its first assignment is a share; it leaves 2 s after getting it.
        leaves = GroupWorker(client, bs, group, topic, "--session-ms", session_ms, "--leave-after-s", 2)
        wait_for(lambda: stays.assignment and leaves.assignment and len(stays.assignment) + len(leaves.assignment) == 4,
                 90, what="two members sharing four partitions")
        leaves.close()  # a clean close sends LeaveGroup
        left_at = time.time()
        wait_for(lambda: stays.assignment == [0, 1, 2, 3], 20, what="the remaining member owning every partition")
        assert time.time() - left_at < session_ms / 1000 / 2, "the rebalance waited for a session timeout"
    finally:
        stays.stop()
        if leaves:
            leaves.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_every_group_receives_every_record(group_broker, topic, client):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    values = produce(bs, topic, 100)
    workers = [GroupWorker(client, bs, f"g-{uuid.uuid4().hex[:8]}", topic, "--max-records", 100) for _ in range(2)]
    for w in workers:
        w.close()
        assert sorted(r["value"] for r in w.records) == sorted(values)


@pytest.mark.parametrize("client", CLIENTS)
def test_commit_after_processing_resumes_exactly_where_the_last_member_stopped(group_broker, topic, group, client):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    values = produce(bs, topic, 100)
    first = GroupWorker(client, bs, group, topic, "--commit", "--max-records", 40)
    first.close()
    committed = committed_offsets(bs, group)
    assert committed == {p: o for p, o in first.committed.items()}, "another client reads what was committed"
    assert sum(committed.values()) == len(first.records)
    second = GroupWorker(client, bs, group, topic, "--commit", "--max-records", 100 - len(first.records))
    second.close()
    for p in range(PARTITIONS):
        offsets = [r["offset"] for r in second.records if r["p"] == p]
        if offsets:
            assert offsets[0] == committed.get(p, 0), f"partition {p} resumed at {offsets[0]}, committed {committed.get(p)}"
    seen = [r["value"] for r in first.records + second.records]
    assert sorted(seen) == sorted(values), "a record was lost or read twice"
    assert committed_offsets(bs, group) == {p: 25 for p in range(PARTITIONS)}


@pytest.mark.parametrize("client", CLIENTS)
def test_auto_commit_stores_what_was_consumed(group_broker, topic, group, client):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    produce(bs, topic, 100)
    w = GroupWorker(client, bs, group, topic, "--auto-commit", "--max-records", 100)
    w.close()
    wait_for(lambda: committed_offsets(bs, group) == {p: 25 for p in range(PARTITIONS)}, 30,
             what="auto-committed offsets at the end of every partition")
    more = produce(bs, topic, 8, prefix="more")
    w = GroupWorker(client, bs, group, topic, "--auto-commit", "--max-records", 8)
    w.close()
    assert sorted(r["value"] for r in w.records) == sorted(more)


def test_kcat_balanced_consumer_commits_and_resumes(group_broker, topic, group):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    values = produce(bs, topic, 50)
    out = kcat("-b", bs, "-G", group, topic, "-o", "beginning", "-e", "-q", "-f", "%s\n",
               "-X", "auto.commit.interval.ms=100")
    assert sorted(out.decode().split()) == sorted(values)
    wait_for(lambda: committed_offsets(bs, group) == {p: 50 // PARTITIONS + (1 if p < 50 % PARTITIONS else 0)
                                                      for p in range(PARTITIONS)},
             30, what="kcat's committed offsets")
    more = produce(bs, topic, 6, prefix="more")
    out = kcat("-b", bs, "-G", group, topic, "-e", "-q", "-f", "%s\n")
    assert sorted(out.decode().split()) == sorted(more), "kcat resumed from its committed offsets"


def samsa(*args, check=True):
    r = subprocess.run([SAMSA_BIN, *args], capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"samsa {args} failed: {r.stderr}"
    return r


def rows(describe_output, topic):
    """{partition: (current, log_end, lag)} from `samsa group describe`."""
    out = {}
    for line in describe_output.splitlines():
        f = line.split()
        if len(f) >= 6 and f[1] == topic:
            out[int(f[2])] = tuple(f[3:6])
    return out


def test_samsa_group_tool_lists_describes_resets_and_deletes(group_broker, topic, group):
    bs = group_broker.bootstrap
    opt = ("--bootstrap-server", bs)
    create_topic(bs, topic)
    produce(bs, topic, 40)
    w = GroupWorker("kafka-python", bs, group, topic, "--commit", "--session-ms", 2000)
    try:
        wait_for(lambda: sum(w.committed.values()) == 40, 60, what="the member committing every record")
        listed = samsa("group", "list", *opt).stdout
        assert any(line.split()[:2] == [group, "Stable"] for line in listed.splitlines()), listed
        described = samsa("group", "describe", group, *opt).stdout
        assert "Stable with 1 member(s)" in described
        assert rows(described, topic) == {p: ("10", "10", "0") for p in range(PARTITIONS)}
        assert "kafka-python" in described, "the member's client id is shown"
        refused = samsa("group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute", *opt, check=False)
        assert refused.returncode != 0 and "inactive" in refused.stderr
        refused = samsa("group", "delete", group, *opt, check=False)
        assert refused.returncode != 0 and "still has members" in refused.stderr
    finally:
        w.kill()
    wait_for(lambda: "Empty" in samsa("group", "describe", group, *opt).stdout, 30, what="the group to empty")
    produce(bs, topic, 8)
    assert rows(samsa("group", "describe", group, *opt).stdout, topic) == {p: ("10", "12", "2") for p in range(PARTITIONS)}
    dry = samsa("group", "reset-offsets", group, "--all-topics", "--to-earliest", *opt).stdout
    assert "Dry run" in dry and committed_offsets(bs, group) == {p: 10 for p in range(PARTITIONS)}
    samsa("group", "reset-offsets", group, "--all-topics", "--to-earliest", "--execute", *opt)
    assert committed_offsets(bs, group) == {p: 0 for p in range(PARTITIONS)}
    samsa("group", "reset-offsets", group, "--topic", f"{topic}:1,2", "--to-offset", "3", "--execute", *opt)
    assert committed_offsets(bs, group) == {0: 0, 1: 3, 2: 3, 3: 0}
    samsa("group", "reset-offsets", group, "--topic", topic, "--to-datetime", "2100-01-01T00:00:00", "--execute", *opt)
    assert committed_offsets(bs, group) == {p: 12 for p in range(PARTITIONS)}
    samsa("group", "reset-offsets", group, "--topic", topic, "--to-datetime", "1970-01-01T00:00:00", "--execute", *opt)
    assert committed_offsets(bs, group) == {p: 0 for p in range(PARTITIONS)}
    assert "Deleted consumer group" in samsa("group", "delete", group, *opt).stdout
    assert group not in samsa("group", "list", *opt).stdout
    missing = samsa("group", "describe", group, *opt, check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_committed_offsets_survive_a_broker_crash(group_broker, topic, group):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    produce(bs, topic, 20)
    w = GroupWorker("confluent", bs, group, topic, "--commit", "--max-records", 20)
    w.close()
    before = committed_offsets(bs, group)
    assert sum(before.values()) == 20
    group_broker.kill()
    group_broker.start()
    assert wait_for(lambda: committed_offsets(bs, group), 30, what="offsets after the restart") == before


def test_a_static_member_restarting_within_its_session_keeps_its_partitions(group_broker, topic, group):
    """KIP-345 with librdkafka: a member with group.instance.id that restarts (no LeaveGroup) gets
    its old partitions back without a rebalance of the others."""
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    opts = ("--session-ms", 10000)
    a = GroupWorker("confluent", bs, group, topic, *opts, "--instance-id", "a")
    b = GroupWorker("confluent", bs, group, topic, *opts, "--instance-id", "b")
    try:
        wait_for(lambda: a.assignment and b.assignment and len(a.assignment) + len(b.assignment) == 4,
                 90, what="two static members sharing four partitions")
        before = list(a.assignment)
        b_events = len(b.history())
        a.kill()
        a = GroupWorker("confluent", bs, group, topic, *opts, "--instance-id", "a")
        wait_for(lambda: a.assignment == before, 30, what="the restarted static member getting its partitions back")
        time.sleep(1)
        assert len(b.history()) == b_events, f"the other member rebalanced: {b.history()[b_events:]}"
    finally:
        a.stop()
        b.stop()


class KcatMember:
    """`kcat -G` as a group member; its assignments come from kcat's rebalance lines on stderr."""

    def __init__(self, bootstrap, group, topic):
        import re
        import threading
        self.re = re
        self.records, self.assignments = [], []
        self.proc = subprocess.Popen(
            ["kcat", "-u", "-b", bootstrap, "-G", group, topic, "-f", "%p %s\n", "-X", "session.timeout.ms=2000",
             "-X", "heartbeat.interval.ms=500", "-X", "auto.offset.reset=earliest"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()

    def _out(self):
        for line in self.proc.stdout:
            p, v = line.split()
            self.records.append((int(p), v))

    def _err(self):
        for line in self.proc.stderr:
            if "rebalanced" in line:
                parts = [] if "revoked" in line else sorted(int(p) for p in self.re.findall(r"\[(\d+)\]", line))
                self.assignments.append(parts)

    @property
    def assignment(self):
        return self.assignments[-1] if self.assignments else None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def test_kcat_balanced_consumers_share_partitions_and_take_over_from_a_crashed_one(group_broker, topic, group):
    bs = group_broker.bootstrap
    create_topic(bs, topic)
    k1, k2 = KcatMember(bs, group, topic), KcatMember(bs, group, topic)
    try:
        wait_for(lambda: k1.assignment and k2.assignment and len(k1.assignment) + len(k2.assignment) == 4,
                 90, what="two kcat members sharing four partitions")
        values = produce(bs, topic, 40)
        wait_for(lambda: len(k1.records) + len(k2.records) >= 40, 30, what="both kcat members reading")
        for k in (k1, k2):
            assert {p for p, _ in k.records} <= set(k.assignment)
        assert sorted(v for k in (k1, k2) for _, v in k.records) == sorted(values)
        k1.kill()
        wait_for(lambda: k2.assignment == [0, 1, 2, 3], 60, what="the surviving kcat owning every partition")
        more = produce(bs, topic, 8, prefix="more")
        wait_for(lambda: set(more) <= {v for _, v in k2.records}, 30, what="the survivor reading every partition")
    finally:
        k1.kill()
        k2.kill()
