"""A consume-transform-produce pipeline with exactly-once semantics, for the SIGKILL test: reads
`--src` (read_committed) in the consumer group `--group` (static member `--instance`), writes
each value upper-cased to `--dst` inside a transaction together with the consumed offsets
(send_offsets_to_transaction), and commits every `--batch` records. `--pause-ms` sleeps inside
each transaction, between producing and committing, so that a kill lands mid-transaction.
Exits 0 once the source has been idle for `--idle-s` seconds."""
import argparse
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    for a in ("--bootstrap", "--src", "--dst", "--group", "--instance", "--txn-id"):
        ap.add_argument(a, required=True)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--pause-ms", type=int, default=0)
    ap.add_argument("--idle-s", type=float, default=5.0)
    args = ap.parse_args()
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": args.group,
        "group.instance.id": args.instance, "isolation.level": "read_committed",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "max.poll.interval.ms": 20000,
    })
    producer = Producer({"bootstrap.servers": args.bootstrap, "transactional.id": args.txn_id,
                         "linger.ms": 2})
    producer.init_transactions(60)
    consumer.subscribe([args.src])
    idle_since = time.time()
    committed = 0
    while time.time() - idle_since < args.idle_s:
        msgs = consumer.consume(args.batch, 0.5)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            continue
        idle_since = time.time()
        producer.begin_transaction()
        for m in msgs:
            producer.produce(args.dst, value=m.value().upper(), partition=m.partition())
        producer.flush(30)
        if args.pause_ms:
            time.sleep(args.pause_ms / 1000)
        offsets = {}
        for m in msgs:
            offsets[(m.topic(), m.partition())] = m.offset() + 1
        producer.send_offsets_to_transaction(
            [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
            consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        committed += len(msgs)
        print(f"committed {committed}", flush=True)
    consumer.close()
    print(f"done: {committed} records", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
