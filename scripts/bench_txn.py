"""The measurements of scripts/bench-txn.sh (see there)."""
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOT, DURATION, RATE = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
PARTITIONS = 6
VALUE = b"x" * 100


def topic():
    t = f"bench-txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": BOOT})  # kept alive until the topic exists
    admin.create_topics([NewTopic(t, PARTITIONS, 1)])[t].result(30)
    return t


def transactional(per_txn):
    t = topic()
    p = Producer({"bootstrap.servers": BOOT, "transactional.id": f"bench-{uuid.uuid4()}",
                  "linger.ms": 1, "batch.num.messages": 10000})
    p.init_transactions(30)
    records = txns = 0
    start = time.perf_counter()
    while time.perf_counter() - start < DURATION:
        p.begin_transaction()
        for i in range(per_txn):
            p.produce(t, VALUE, partition=(records + i) % PARTITIONS)
        p.commit_transaction(30)
        records += per_txn
        txns += 1
    elapsed = time.perf_counter() - start
    return records / elapsed, txns / elapsed


def idempotent():
    t = topic()
    p = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "linger.ms": 1,
                  "batch.num.messages": 10000})
    records = 0
    start = time.perf_counter()
    while time.perf_counter() - start < DURATION:
        for _ in range(1000):
            while True:
                try:
                    p.produce(t, VALUE, partition=records % PARTITIONS)
                    break
                except BufferError:
                    p.poll(0.01)
            records += 1
        p.poll(0)
    p.flush(60)
    return records / (time.perf_counter() - start)


def e2e_latency():
    t = topic()
    got = []
    stop = threading.Event()

    def consume():
        c = Consumer({"bootstrap.servers": BOOT, "group.id": f"lat-{uuid.uuid4()}",
                      "isolation.level": "read_committed", "fetch.wait.max.ms": 10})
        c.assign([TopicPartition(t, p, 0) for p in range(PARTITIONS)])
        while not stop.is_set():
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                got.append(time.perf_counter() - float(m.value().decode()))
        c.close()

    th = threading.Thread(target=consume)
    th.start()
    time.sleep(2)
    p = Producer({"bootstrap.servers": BOOT, "transactional.id": f"lat-{uuid.uuid4()}", "linger.ms": 0})
    p.init_transactions(30)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < DURATION:
        due = start + n / RATE
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        p.begin_transaction()
        p.produce(t, str(time.perf_counter()).encode(), partition=n % PARTITIONS)
        p.commit_transaction(30)
        n += 1
    time.sleep(2)
    stop.set()
    th.join()
    lat = sorted(x * 1000 for x in got)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    achieved = n / DURATION
    return len(lat), n, achieved, pct(0.5), pct(0.99), lat[-1]


print(f"{'producer':<32} {'records/s':>12} {'txns/s':>10}")
for per in (1, 10, 100):
    r, tx = transactional(per)
    print(f"{'transactional, ' + str(per) + ' per txn':<32} {r:>12.0f} {tx:>10.0f}", flush=True)
print(f"{'idempotent (acks=all)':<32} {idempotent():>12.0f} {'-':>10}", flush=True)
n, sent, achieved, p50, p99, mx = e2e_latency()
print(f"end-to-end, 1 record/txn, {achieved:.0f} txns/s offered: {n}/{sent} read by read_committed; "
      f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {mx:.2f} ms")
