"""One workload process of a chaos run (cluster/src/workload.rs starts them), built on
confluent-kafka (librdkafka): a client nobody on the team wrote, doing what applications do.

    python chaos_worker.py producer --bootstrap B --topic T --partitions N --name p1 --out F [--rate R] [--keys K]
    python chaos_worker.py consumer --bootstrap B --topic T --group G --name c1 --out F
    python chaos_worker.py admin    --bootstrap B --prefix X --name admin --out F
    python chaos_worker.py txn      --bootstrap B --topic T --partitions N --name x1 --out F [--rate R]
    python chaos_worker.py txn-reader --bootstrap B --topic T --partitions N --name r1 --out F

Each writes its history to F, one JSON object per line, "t" in Unix milliseconds (see
cluster/src/history.rs for every field):
  producer  idempotent, acks=all; writes the unique values "<name>-<seq>" round-robin over the
            partitions at R per second. {"e":"ack",p,o,v} per acknowledged write,
            {"e":"fail",p,v,err} per failed one (indeterminate: it may have been written).
            With --keys K (a compacted topic): write n has the key "k<n mod K>", padded to
            ~200 bytes so segments roll, and the events are {"e":"keyed_ack",p,o,k,v} and
            {"e":"keyed_fail",p,k,v,err}.
  consumer  a member of group G; commits synchronously after each batch it processed.
            {"e":"assigned",ps} on every rebalance, {"e":"read",p,o,v} per record,
            {"e":"commit",offsets} per acknowledged commit, {"e":"commit_failed",err}.
  admin     every 2 s creates a topic, grows the previous one to 2 partitions, deletes the oldest
            beyond 5 and lists topics: {"e":"admin",op,topic,partitions,ok,err}; ok=false is "unknown".
            It also creates a SCRAM user (AlterUserScramCredentials, op scram_upsert) and deletes the
            oldest beyond 5 (op scram_delete); "topic" then holds the user name. And an ACL
            binding (CreateAcls, op acl_create: READ on a topic for a principal of its own) and
            deletes the oldest beyond 5 (DeleteAcls, op acl_delete); "topic" then holds the
            binding's principal.
  txn       transactions (KIP-98) of 1-4 unique values "<name>-t<n>-<i>" over the partitions,
            one in four aborted on purpose: {"e":"txn_commit"|"txn_abort",txn,vs:[[p,v],..]} once
            the end is acknowledged, {"e":"txn_fail",txn,vs,err} when it is unknown.
  txn-reader  a read_committed consumer of every partition from the start: {"e":"txn_read",p,o,v}.
SIGTERM ends a worker: a producer stops writing and waits (bounded) for its outstanding writes,
then every worker writes {"e":"done","sent":N} and exits 0.
"""
import argparse
import json
import os
import signal
import sys
import time

STOP = []
# librdkafka debug contexts for the worker's log (stderr), e.g. CHAOS_RDKAFKA_DEBUG=cgrp,broker
DEBUG = {"debug": os.environ["CHAOS_RDKAFKA_DEBUG"]} if os.environ.get("CHAOS_RDKAFKA_DEBUG") else {}
FLUSH_S = 60            # how long a stopping producer waits for outstanding writes
OUT_FLUSH_S = 0.5       # history file flush interval
ADMIN_INTERVAL_S = 2.0  # one admin round per interval
ADMIN_TIMEOUT_S = 15    # one admin call's bound
ADMIN_TOPICS_MAX = 5    # live admin topics: older ones are deleted, so a long run's metadata stays small


def now_ms():
    return int(time.time() * 1000)


class History:
    def __init__(self, path, name):
        self.f = open(path, "w", buffering=1 << 16)
        self.name = name
        self.flushed = time.time()

    def emit(self, e, **fields):
        fields["e"] = e
        fields["t"] = now_ms()
        fields["w"] = self.name
        self.f.write(json.dumps(fields, separators=(",", ":")) + "\n")
        if time.time() - self.flushed > OUT_FLUSH_S:
            self.f.flush()
            self.flushed = time.time()

    def close(self):
        self.f.flush()
        self.f.close()


def on_sigterm(*_):
    STOP.append(True)


class ProducerInstance:
    """One librdkafka producer and the writes it still owes an outcome for. After a fatal error
    (librdkafka gives up on idempotence guarantees, e.g. "Unable to reconstruct MessageSet") the
    instance is abandoned: every write it still holds is recorded as failed (indeterminate) and a
    new instance, with a new producer id, takes over; values are never reused."""

    def __init__(self, conf, h, keyed=False):
        from confluent_kafka import Producer
        self.h = h
        self.keyed = keyed
        self.outstanding = {}  # value -> partition
        self.abandoned = False
        self.fatal = None
        self.p = Producer({**conf, "error_cb": self.on_error})

    def on_error(self, err):
        if err.fatal():
            self.fatal = str(err)
        self.h.emit("log", msg=f"client error: {err}")

    def on_delivery(self, err, msg):
        v = msg.value().decode().split("|", 1)[0]
        if self.abandoned or self.outstanding.pop(v, None) is None:
            return
        if self.keyed:
            k = msg.key().decode()
            if err is None:
                self.h.emit("keyed_ack", p=msg.partition(), o=msg.offset(), k=k, v=v)
            else:
                self.h.emit("keyed_fail", p=msg.partition(), k=k, v=v, err=str(err))
        elif err is None:
            self.h.emit("ack", p=msg.partition(), o=msg.offset(), v=v, c=msg.timestamp()[1])
        else:
            self.h.emit("fail", p=msg.partition(), v=v, err=str(err))

    def produce(self, topic, value, partition, key=None):
        payload = value.encode() if key is None else (value + "|" + "x" * 180).encode()
        self.p.produce(topic, key=key and key.encode(), value=payload, partition=partition,
                       on_delivery=self.on_delivery)
        self.outstanding[value] = partition

    def abandon(self, why):
        self.h.emit("log", msg=f"fatal: {why}; {len(self.outstanding)} writes lost their outcome; new producer")
        self.abandoned = True
        for v, part in self.outstanding.items():
            why_lost = f"producer abandoned after a fatal error: {why}"
            if self.keyed:
                self.h.emit("keyed_fail", p=part, k="", v=v, err=why_lost)
            else:
                self.h.emit("fail", p=part, v=v, err=why_lost)
        self.outstanding.clear()
        try:
            self.p.purge(in_queue=True, in_flight=True)
        except Exception:  # noqa: BLE001 - a dead instance may refuse; it is dropped either way
            pass


def run_producer(a, h):
    from confluent_kafka import KafkaException
    conf = {
        "bootstrap.servers": a.bootstrap, "acks": "all", "enable.idempotence": True,
        "linger.ms": 5, "message.timeout.ms": 30000, "request.timeout.ms": 5000,
        "retry.backoff.ms": 100, "topic.metadata.refresh.interval.ms": 1000,
        "queue.buffering.max.messages": 10000, **DEBUG,
    }
    keyed = a.keys > 0
    inst = ProducerInstance(conf, h, keyed)
    seq = 0
    start = time.time()
    while not STOP:
        try:
            if inst.fatal:
                raise KafkaException(inst.fatal)
            due = start + seq / a.rate
            wait = due - time.time()
            if wait > 0:
                inst.p.poll(min(wait, 0.1))
                continue
            try:
                key = f"k{seq % a.keys}" if keyed else None
                inst.produce(a.topic, f"{a.name}-{seq}", seq % a.partitions, key)
                seq += 1
            except BufferError:
                inst.p.poll(0.1)
            inst.p.poll(0)
        except KafkaException as e:
            err = e.args[0] if e.args else e
            if inst.fatal or getattr(err, "fatal", lambda: False)():
                inst.abandon(inst.fatal or str(err))
                inst = ProducerInstance(conf, h, keyed)
            else:
                h.emit("log", msg=f"produce refused: {err}")
                time.sleep(0.1)
    try:
        left = inst.p.flush(FLUSH_S)
        if left:
            h.emit("log", msg=f"{left} writes still outstanding after {FLUSH_S}s: unknown outcome")
    except KafkaException as e:
        inst.abandon(str(e))
    h.emit("done", sent=seq, keyed=keyed)


def run_consumer(a, h):
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
    c = Consumer({
        "bootstrap.servers": a.bootstrap, "group.id": a.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 10000, "heartbeat.interval.ms": 3000,
        "topic.metadata.refresh.interval.ms": 1000,
        "error_cb": lambda err: h.emit("log", msg=f"client error: {err}"),
        **DEBUG,
    })

    def assigned(_, ps):
        h.emit("assigned", ps=sorted(tp.partition for tp in ps))

    def revoked(_, ps):
        h.emit("assigned", ps=[])

    c.subscribe([a.topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    while not STOP:
        msgs = c.consume(num_messages=200, timeout=0.5)
        done = {}
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    h.emit("log", msg=f"consume error: {m.error()}")
                continue
            h.emit("read", p=m.partition(), o=m.offset(), v=m.value().decode())
            done[m.partition()] = m.offset() + 1
        if done:
            try:
                c.commit(offsets=[TopicPartition(a.topic, p, o) for p, o in done.items()], asynchronous=False)
                h.emit("commit", offsets={str(p): o for p, o in done.items()})
            except KafkaException as e:
                h.emit("commit_failed", err=str(e))
    h.emit("done", sent=0)  # the history is complete; closing may wait for the coordinator
    h.f.flush()
    c.close()


def run_admin(a, h):
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                       NewPartitions, NewTopic, ResourcePatternType, ResourceType,
                                       ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                       UserScramCredentialUpsertion)
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    created = []  # topics whose creation was acknowledged and that were not deleted
    users = []    # SCRAM users whose creation was acknowledged and that were not deleted
    bindings = []  # ACL principals whose binding's creation was acknowledged and not deleted

    def binding(principal):
        name = principal.split(":", 1)[1]
        return AclBinding(ResourceType.TOPIC, name, ResourcePatternType.LITERAL, principal, "*",
                          AclOperation.READ, AclPermissionType.ALLOW)

    def outcome(op, topic, future, partitions=None):
        try:
            future.result(timeout=ADMIN_TIMEOUT_S)
            h.emit("admin", op=op, topic=topic, partitions=partitions, ok=True)
            return True
        except Exception as e:  # noqa: BLE001 - every failure is recorded as an unknown outcome
            h.emit("admin", op=op, topic=topic, partitions=partitions, ok=False, err=str(e))
            return False

    k = 0
    while not STOP:
        started = time.time()
        topic = f"{a.prefix}-{k}"
        f = admin.create_topics([NewTopic(topic, 1, 3)], operation_timeout=10)[topic]
        if outcome("create", topic, f):
            created.append(topic)
        if k % 2 == 1 and len(created) >= 2:
            grow = created[-2]
            f = admin.create_partitions([NewPartitions(grow, 2)], operation_timeout=10)[grow]
            outcome("create_partitions", grow, f, partitions=2)
        if len(created) > ADMIN_TOPICS_MAX:
            gone = created.pop(0)
            f = admin.delete_topics([gone], operation_timeout=10)[gone]
            outcome("delete", gone, f)
        user = f"{a.prefix}-user-{k}"
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
        f = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, info, f"pw-{k}".encode(), os.urandom(16))])[user]
        if outcome("scram_upsert", user, f):
            users.append(user)
        if len(users) > ADMIN_TOPICS_MAX:
            old = users.pop(0)
            f = admin.alter_user_scram_credentials(
                [UserScramCredentialDeletion(old, ScramMechanism.SCRAM_SHA_256)])[old]
            outcome("scram_delete", old, f)
        principal = f"User:{a.prefix}-acl-{k}"
        (f,) = admin.create_acls([binding(principal)], request_timeout=ADMIN_TIMEOUT_S).values()
        if outcome("acl_create", principal, f):
            bindings.append(principal)
        if len(bindings) > ADMIN_TOPICS_MAX:
            old = bindings.pop(0)
            b = binding(old)
            flt = AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                   b.permission_type)
            (f,) = admin.delete_acls([flt], request_timeout=ADMIN_TIMEOUT_S).values()
            outcome("acl_delete", old, f)
        try:
            admin.list_topics(timeout=5)
            h.emit("admin", op="list", topic="*", ok=True)
        except Exception as e:  # noqa: BLE001
            h.emit("admin", op="list", topic="*", ok=False, err=str(e))
        k += 1
        while not STOP and time.time() - started < ADMIN_INTERVAL_S:
            time.sleep(0.1)
    h.emit("done", sent=0)


TXN_VALUES_MAX = 4      # values per transaction: 1..TXN_VALUES_MAX, over random partitions
TXN_ABORT_EVERY = 4     # one transaction in this many is aborted on purpose


def run_txn(a, h):
    """Transactions of 1..TXN_VALUES_MAX unique values over the partitions, at R per second;
    every TXN_ABORT_EVERY-th aborted. {"e":"txn_commit"|"txn_abort",txn,vs:[[p,v]...]} once its
    end is acknowledged, {"e":"txn_fail",txn,vs,err} when the outcome is unknown (all or none of
    vs may be committed). A fatal error starts a new instance with the same transactional id,
    which fences the old one and aborts its open transaction."""
    import random
    from confluent_kafka import KafkaException, Producer
    rnd = random.Random(a.name)
    conf = {
        "bootstrap.servers": a.bootstrap, "transactional.id": f"{a.name}-txn",
        "transaction.timeout.ms": 20000, "linger.ms": 5, "message.timeout.ms": 15000,
        "request.timeout.ms": 5000, "retry.backoff.ms": 100,
        "topic.metadata.refresh.interval.ms": 1000, **DEBUG,
        "error_cb": lambda err: h.emit("log", msg=f"client error: {err}"),
    }

    def new_producer():
        while not STOP:
            try:
                p = Producer(conf)
                p.init_transactions(30)
                return p
            except KafkaException as e:
                h.emit("log", msg=f"init_transactions failed: {e}")
                time.sleep(1)
        return None

    p = new_producer()
    n = 0
    start = time.time()
    while not STOP and p is not None:
        due = start + n / a.rate
        if due > time.time():
            time.sleep(min(due - time.time(), 0.1))
            continue
        txn = f"{a.name}-t{n}"
        vs = [[rnd.randrange(a.partitions), f"{txn}-{i}"] for i in range(rnd.randint(1, TXN_VALUES_MAX))]
        abort = n % TXN_ABORT_EVERY == TXN_ABORT_EVERY - 1
        n += 1
        try:
            p.begin_transaction()
            for part, v in vs:
                p.produce(a.topic, value=v.encode(), partition=part)
            if abort:
                p.abort_transaction(30)
                h.emit("txn_abort", txn=txn, vs=vs)
            else:
                p.commit_transaction(30)
                h.emit("txn_commit", txn=txn, vs=vs)
        except KafkaException as e:
            err = e.args[0] if e.args else e
            h.emit("txn_fail", txn=txn, vs=vs, err=str(err))
            fatal = getattr(err, "fatal", lambda: False)()
            if not fatal:
                try:
                    p.abort_transaction(30)
                    continue
                except KafkaException as e2:
                    h.emit("log", msg=f"abort after a failed transaction failed: {e2}")
            h.emit("log", msg="starting a new transactional producer instance")
            p = new_producer()
    h.emit("done", sent=0, txns=n)  # sent counts plain writes only (the checker's stats)


def run_txn_reader(a, h):
    """A read_committed consumer of every partition from the start (no group):
    {"e":"txn_read",p,o,v} per record."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({
        "bootstrap.servers": a.bootstrap, "group.id": f"{a.name}-reader",
        "isolation.level": "read_committed", "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 1000, **DEBUG,
        "error_cb": lambda err: h.emit("log", msg=f"client error: {err}"),
    })
    c.assign([TopicPartition(a.topic, p, 0) for p in range(a.partitions)])
    while not STOP:
        for m in c.consume(num_messages=200, timeout=0.5):
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    h.emit("log", msg=f"consume error: {m.error()}")
                continue
            h.emit("txn_read", p=m.partition(), o=m.offset(), v=m.value().decode())
    h.emit("done", sent=0)
    h.f.flush()
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["producer", "consumer", "admin", "txn", "txn-reader"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--topic")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--group")
    ap.add_argument("--prefix", default="chaos-admin")
    ap.add_argument("--keys", type=int, default=0)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    h = History(a.out, a.name)
    try:
        {"producer": run_producer, "consumer": run_consumer, "admin": run_admin,
         "txn": run_txn, "txn-reader": run_txn_reader}[a.role](a, h)
    finally:
        h.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
