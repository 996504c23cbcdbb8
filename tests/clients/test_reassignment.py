"""Partition reassignment (KIP-455) and draining on a four-node cluster: three voters and a
broker-only node. An idempotent acks=all producer (confluent-kafka) writes throughout; the
partition's old leader is SIGKILLed while the move is in progress (the new replica is paused
with SIGSTOP so the move cannot finish early); afterwards every acknowledged record is consumed
exactly once, and the new replicas' logs are identical byte for byte."""
import glob
import json
import os
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition as CkTopicPartition
import kafka.errors as Errors
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import TopicPartition

from conftest import SAMSA_BIN, Cluster, kcat, wait_for


@pytest.fixture(scope="module")
def four():
    c = Cluster(observers=1, extra="auto.leader.rebalance.enable=false\n")
    yield c
    for p in c.procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
    c.stop()


def partition_md(c, topic, index=0):
    md = json.loads(kcat("-b", c.all, "-L", "-J", "-t", topic))
    return next(p for p in md["topics"][0]["partitions"] if p["partition"] == index)


def replicas_of(c, topic, index=0):
    p = partition_md(c, topic, index)
    return [r["id"] for r in p["replicas"]], sorted(r["id"] for r in p["isrs"]), p["leader"]


class Writer:
    """An idempotent acks=all producer writing numbered records until stopped."""

    def __init__(self, bootstrap, topic, partitions=1):
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 5, "message.timeout.ms": 120000})
        self.topic, self.partitions = topic, partitions
        self.acked, self.errors = [], []
        self.stop_flag = threading.Event()
        self.unflushed = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_delivery(self, err, msg):
        if err is None:
            self.acked.append((msg.partition(), msg.value()))
        else:
            self.errors.append(str(err))

    def _run(self):
        i = 0
        while not self.stop_flag.is_set():
            try:
                self.p.produce(self.topic, value=f"v{i:07d}".encode() * 8, partition=i % self.partitions,
                               on_delivery=self._on_delivery)
            except BufferError:  # the local queue is full while a leader moves: wait for room
                self.p.poll(0.1)
                continue
            i += 1
            if i % 50 == 0:
                self.p.poll(0.01)
        self.unflushed = self.p.flush(120)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(150)
        assert not self.thread.is_alive() and self.unflushed == 0, "every record was delivered or failed"
        return self.acked


def consume_all(bootstrap, topic, partitions, expected):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reassign-check", "enable.auto.commit": False})
    c.assign([CkTopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen = []
    deadline = time.time() + 90
    while len(seen) < expected and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.append((m.partition(), m.value()))
    c.close()
    return seen


def log_bytes(c, node, topic, index=0):
    """Every segment of node's replica, concatenated in offset order (None if absent)."""
    d = os.path.join(c.dir, f"node{node}", f"{topic}-{index}")
    if not os.path.isdir(d):
        return None
    data = b""
    for f in sorted(glob.glob(os.path.join(d, "*.log"))):
        with open(f, "rb") as fh:
            data += fh.read()
    return data


def same_logs(c, nodes, topic, index=0):
    logs = [log_bytes(c, n, topic, index) for n in nodes]
    return logs[0] is not None and all(x == logs[0] for x in logs)


def pause(c, node):
    c.procs[node].send_signal(signal.SIGSTOP)


def resume(c, node):
    c.procs[node].send_signal(signal.SIGCONT)


def test_kafka_python_moves_a_partition_onto_the_new_broker_through_a_leader_kill(four, topic):
    c = four
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(2))
    admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                  replica_assignments={0: [1, 2, 3]},
                                  topic_configs={"min.insync.replicas": "2"})])
    wait_for(lambda: replicas_of(c, topic)[2] == 1, what="broker 1 leads")
    w = Writer(c.bootstrap(2), topic)
    wait_for(lambda: len(w.acked) >= 2000, what="records acknowledged before the move")
    pause(c, 4)
    try:
        admin.alter_partition_reassignments({TopicPartition(topic, 0): [4, 2, 3]})
        ongoing = admin.list_partition_reassignments()
        (tp, state), = [(k, v) for k, v in ongoing.items() if k.topic == topic]
        assert (state["adding_replicas"], state["removing_replicas"]) == ([4], [1]), state
        assert replicas_of(c, topic)[0] == [4, 2, 3, 1]
        c.kill(1)  # the old leader, mid-move
        wait_for(lambda: replicas_of(c, topic)[2] in (2, 3), what="a new leader")
        n = len(w.acked)
        wait_for(lambda: len(w.acked) >= n + 1000, timeout=60, what="writes go on without the old leader")
    finally:
        resume(c, 4)
    wait_for(lambda: replicas_of(c, topic)[0] == [4, 2, 3], timeout=60, what="the move completes")
    # A new admin client: kafka-python keeps asking a dead controller it cached.
    admin.close()
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(3))
    assert not [k for k in admin.list_partition_reassignments() if k.topic == topic]
    acked = w.stop()
    assert not w.errors, w.errors[:5]
    c.start(1)
    wait_for(lambda: log_bytes(c, 1, topic) is None, timeout=30, what="the removed replica deletes its log")
    seen = consume_all(c.bootstrap(3), topic, 1, len(acked))
    assert seen == acked, "every acknowledged record, once, in order"
    wait_for(lambda: same_logs(c, [4, 2, 3], topic), timeout=30, what="the three replicas' logs are identical")
    wait_for(lambda: replicas_of(c, topic)[1] == [2, 3, 4], what="the ISR is the new replicas")
    admin.close()


def test_cancelling_a_reassignment_reverts_it(four, topic):
    c = four
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(1))
    admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                  replica_assignments={0: [1, 2]})])
    pause(c, 4)
    try:
        admin.alter_partition_reassignments({TopicPartition(topic, 0): [4, 2]})
        assert replicas_of(c, topic)[0] == [4, 2, 1]
        admin.alter_partition_reassignments({TopicPartition(topic, 0): None})
        assert not [k for k in admin.list_partition_reassignments() if k.topic == topic]
        assert replicas_of(c, topic)[0] == [2, 1], "Kafka's revert: the replicas minus the added ones"
    finally:
        resume(c, 4)
    # Cancelling twice, and a target on an unknown broker: Kafka's errors, per partition.
    tp = TopicPartition(topic, 0)
    assert admin.alter_partition_reassignments({tp: None})[tp] is Errors.NoReassignmentInProgressError
    assert admin.alter_partition_reassignments({tp: [1, 9]})[tp] is Errors.InvalidReplicationAssignmentError
    missing = TopicPartition(topic, 7)
    assert admin.alter_partition_reassignments({missing: [1, 2]})[missing] is Errors.UnknownTopicOrPartitionError
    assert replicas_of(c, topic)[0] == [2, 1]
    admin.close()


def test_samsa_broker_drain_moves_everything_off_a_broker_through_a_leader_kill(four, topic):
    c = four
    for n in c.procs:
        if c.procs[n].poll() is not None:
            c.start(n)
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(1))
    admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                  replica_assignments={0: [2, 3, 1], 1: [3, 2, 1], 2: [1, 3, 4]},
                                  topic_configs={"min.insync.replicas": "2"})])
    wait_for(lambda: replicas_of(c, topic)[2] == 2, what="broker 2 leads partition 0")
    w = Writer(c.bootstrap(1), topic, partitions=3)
    wait_for(lambda: len(w.acked) >= 3000, what="records acknowledged before the drain")
    # Broker 4 pauses (still registered and unfenced for a few seconds), so the moves onto it
    # stay in progress while broker 2, the leader of partition 0, is killed.
    pause(c, 4)
    try:
        drain = subprocess.Popen([SAMSA_BIN, "broker", "drain", "2", "--execute", "--bootstrap-server",
                                  c.bootstrap(1)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first = drain.stdout.readline()
        assert first.startswith("Draining broker 2: "), first
        wait_for(lambda: replicas_of(c, topic)[0][:3] == [4, 3, 1], what="the drain started")
        c.kill(2)
        n = len(w.acked)
        wait_for(lambda: len(w.acked) >= n + 1000, timeout=60, what="writes go on without broker 2")
    finally:
        resume(c, 4)
    out, _ = drain.communicate(timeout=120)
    assert drain.returncode == 0, first + out
    moves = int(first.split(": ")[1].split()[0])
    assert moves >= 2 and f"{moves} of {moves} partition move(s) complete" in out, first + out
    assert out.rstrip().endswith("Done."), out
    for p in range(3):
        replicas, isr, leader = replicas_of(c, topic, p)
        assert 2 not in replicas and leader != 2, (p, replicas, leader)
    acked = w.stop()
    assert not w.errors, w.errors[:5]
    seen = consume_all(c.bootstrap(3), topic, 3, len(acked))
    assert sorted(seen) == sorted(acked) and len(seen) == len(acked)
    for p in range(3):
        assert [v for q, v in seen if q == p] == [v for q, v in acked if q == p], "in order per partition"
        wait_for(lambda: same_logs(c, replicas_of(c, topic, p)[0], topic, p), timeout=30,
                 what=f"partition {p}'s replicas' logs are identical")
    c.start(2)
    wait_for(lambda: all(log_bytes(c, 2, topic, p) is None for p in range(3)), timeout=30,
             what="broker 2 deletes the replicas it no longer hosts")
    admin.close()


def test_samsa_topic_reassign_applies_verifies_and_rebalance_plans(four, topic, tmp_path):
    c = four
    for n in c.procs:
        if c.procs[n].poll() is not None:
            c.start(n)
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(1))
    admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                  replica_assignments={0: [1, 2], 1: [2, 3]})])
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [4, 1], "log_dirs": ["any", "any"]}]}))
    run = lambda *a: subprocess.run([SAMSA_BIN, "topic", "reassign", "--reassignment-json-file", str(plan),
                                     "--bootstrap-server", c.bootstrap(1), *a], capture_output=True, text=True, timeout=60)
    r = run()
    assert r.returncode == 0, r.stderr
    assert "Save this to use as the --reassignment-json-file option during rollback" in r.stdout
    assert f'"topic":"{topic}","partition":0,"replicas":[1,2]' in r.stdout, r.stdout
    wait_for(lambda: run("--verify").returncode == 0, timeout=30, what="the plan completes")
    assert f"{topic}-0 is completed" in run("--verify").stdout
    assert replicas_of(c, topic)[0] == [4, 1]
    bad = tmp_path / "bad.json"
    bad.write_text("{\"partitions\": 3}")
    r = subprocess.run([SAMSA_BIN, "topic", "reassign", "--reassignment-json-file", str(bad),
                        "--bootstrap-server", c.bootstrap(1)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "is not a reassignment plan" in r.stderr, r.stderr
    r = subprocess.run([SAMSA_BIN, "cluster", "rebalance", "--bootstrap-server", c.bootstrap(1)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Balanced placement over brokers [1, 2, 3, 4]"), r.stdout
    assert "Run again with --execute to apply it." in r.stdout or "Nothing to move." in r.stdout
    admin.close()


def test_elect_leaders_through_confluent_kafka_and_kafka_python(four, topic):
    from confluent_kafka import ElectionType
    from confluent_kafka.admin import AdminClient

    c = four
    for n in c.procs:
        if c.procs[n].poll() is not None:
            c.start(n)
    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap(1))
    kp.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                               replica_assignments={0: [3, 1], 1: [4]})])
    wait_for(lambda: replicas_of(c, topic)[2] == 3, what="broker 3 leads")
    # A reorder completes at once and moves no leadership: broker 1 is now preferred, 3 leads.
    kp.alter_partition_reassignments({TopicPartition(topic, 0): [1, 3]})
    assert replicas_of(c, topic)[0] == [1, 3] and replicas_of(c, topic)[2] == 3
    ck = AdminClient({"bootstrap.servers": c.all})
    tp = CkTopicPartition(topic, 0)
    result = ck.elect_leaders(ElectionType.PREFERRED, [tp]).result(30)
    assert list(result.values()) == [None], result
    wait_for(lambda: replicas_of(c, topic)[2] == 1, what="the preferred leader leads")
    again = ck.elect_leaders(ElectionType.PREFERRED, [tp]).result(30)
    assert "ELECTION_NOT_NEEDED" in str(list(again.values())[0]), again
    # Unclean election of a partition whose only replica is down: nothing is eligible.
    c.kill(4)
    wait_for(lambda: replicas_of(c, topic, 1)[2] == -1, what="partition 1 goes offline")
    kp.close()
    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap(2))
    r = kp.elect_leaders(1, {topic: [1]}, raise_errors=False)
    (res,) = [p for t in r.replica_election_results for p in t.partition_result]
    assert res.error_code == Errors.EligibleLeadersNotAvailableError.errno, res
    c.start(4)
    wait_for(lambda: replicas_of(c, topic, 1)[2] == 4, what="the replica leads again once back")
    kp.close()


def test_a_throttle_bounds_the_catch_up_copy_until_lifted_and_verify_clears_it(four, topic, tmp_path):
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
    c = four
    for n in c.procs:
        if c.procs[n].poll() is not None:
            c.start(n)
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(1))
    admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                  replica_assignments={0: [1, 2, 3]})])
    wait_for(lambda: replicas_of(c, topic)[2] == 1, what="broker 1 leads")
    p = Producer({"bootstrap.servers": c.all, "acks": "all", "linger.ms": 20})
    for _ in range(8000):
        p.produce(topic, b"t" * 1000)
        p.poll(0)
    assert p.flush(60) == 0
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [4, 2, 3]}]}))
    run = lambda *a: subprocess.run([SAMSA_BIN, "topic", "reassign", "--reassignment-json-file", str(plan),
                                     "--bootstrap-server", c.bootstrap(1), *a], capture_output=True, text=True, timeout=60)
    started = time.time()
    r = run("--throttle", "200000")
    assert r.returncode == 0, r.stderr
    assert "The inter-broker throttle limit was set to 200000 B/s on brokers 1,2,3,4" in r.stdout, r.stdout
    ck = AdminClient({"bootstrap.servers": c.all})
    b4 = ConfigResource(ResourceType.BROKER, "4")
    assert ck.describe_configs([b4])[b4].result(30)["follower.replication.throttled.rate"].value == "200000"
    t = ConfigResource(ResourceType.TOPIC, topic)
    configs = ck.describe_configs([t])[t].result(30)
    assert configs["follower.replication.throttled.replicas"].value == "0:4"
    assert configs["leader.replication.throttled.replicas"].value == "0:1,0:2,0:3"
    # 8 MB at 200 kB/s: after ~5 s the new replica holds the first window's burst (the rate is
    # measured over 10 windows from the start, as Kafka's) plus ~200 kB/s, far from all of it.
    time.sleep(max(0.0, 5 - (time.time() - started)))
    copied = len(log_bytes(c, 4, topic) or b"")
    assert copied < 5_000_000, copied
    r = run("--verify")
    assert r.returncode != 0 and f"{topic}-0 is still in progress" in r.stdout, r.stdout
    for n in (1, 2, 3, 4):
        subprocess.run([SAMSA_BIN, "configs", "--bootstrap-server", c.bootstrap(1), "--alter",
                        "--entity-type", "brokers", "--entity-name", str(n), "--delete-config",
                        "leader.replication.throttled.rate,follower.replication.throttled.rate"],
                       check=True, capture_output=True, timeout=60)
    wait_for(lambda: run("--verify").returncode == 0, timeout=60, what="the move completes once unthrottled")
    wait_for(lambda: same_logs(c, [4, 2, 3], topic), timeout=30, what="identical logs")
    configs = ck.describe_configs([t])[t].result(30)
    assert configs["follower.replication.throttled.replicas"].value == "", "verify cleared the throttle"
    admin.close()
