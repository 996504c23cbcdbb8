"""One consumer-group member as its own process, so tests can run several, kill one with SIGKILL
(a crash: no LeaveGroup) and watch the rest.

    python group_worker.py CLIENT BOOTSTRAP GROUP TOPIC [options]

CLIENT is confluent, kafka-python or aiokafka. The worker prints one JSON object per line, each
with "t", the wall-clock time in seconds:
  {"event": "subscribing"}                                 right before joining the group
  {"event": "assigned", "partitions": [p, ...]}           after every rebalance (sorted)
  {"event": "record", "p": p, "offset": o, "value": v}     per record processed
  {"event": "committed", "offsets": {p: next_offset}}      after each synchronous commit
  {"event": "commit_failed", "error": "..."}              a commit failed (the worker carries on)
  {"event": "closed"}                                      after a clean close
Options:
  --commit           commit synchronously after processing each poll's records (at-least-once)
  --auto-commit      enable.auto.commit with a 200 ms interval (and no manual commits)
  --max-records N    close cleanly after processing N records
  --session-ms MS    session.timeout.ms (heartbeats every MS/3)
  --instance-id ID   group.instance.id (static membership)
  --idle-exit-s S    close cleanly after S seconds without records (0: never)
  --leave-after-s S  close cleanly S seconds after the first non-empty assignment
"""
import argparse
import asyncio
import json
import sys
import time


FIRST_ASSIGNED = []


def emit(**event):
    event["t"] = time.time()
    if event["event"] == "assigned" and event["partitions"] and not FIRST_ASSIGNED:
        FIRST_ASSIGNED.append(event["t"])
    print(json.dumps(event), flush=True)


def parse():
    a = argparse.ArgumentParser()
    a.add_argument("client")
    a.add_argument("bootstrap")
    a.add_argument("group")
    a.add_argument("topic")
    a.add_argument("--commit", action="store_true")
    a.add_argument("--auto-commit", action="store_true")
    a.add_argument("--max-records", type=int, default=0)
    a.add_argument("--session-ms", type=int, default=6000)
    a.add_argument("--instance-id")
    a.add_argument("--idle-exit-s", type=float, default=0)
    a.add_argument("--leave-after-s", type=float, default=0)
    return a.parse_args()


class Tracker:
    """Counts records and decides when to stop."""

    def __init__(self, args):
        self.args = args
        self.count = 0
        self.last_record = time.time()

    def record(self, p, offset, value):
        self.count += 1
        self.last_record = time.time()
        emit(event="record", p=p, offset=offset, value=value.decode() if value else None)

    def done(self):
        if self.args.max_records and self.count >= self.args.max_records:
            return True
        if self.args.leave_after_s and FIRST_ASSIGNED and time.time() - FIRST_ASSIGNED[0] > self.args.leave_after_s:
            return True
        return bool(self.args.idle_exit_s) and time.time() - self.last_record > self.args.idle_exit_s


def run_confluent(args):
    from confluent_kafka import Consumer, TopicPartition
    conf = {
        "bootstrap.servers": args.bootstrap, "group.id": args.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": args.auto_commit, "auto.commit.interval.ms": 200,
        "session.timeout.ms": args.session_ms, "heartbeat.interval.ms": max(args.session_ms // 3, 100),
        "topic.metadata.refresh.interval.ms": 1000,
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id
    c = Consumer(conf)

    def on_assign(consumer, partitions):
        emit(event="assigned", partitions=sorted(p.partition for p in partitions))

    emit(event="subscribing")
    c.subscribe([args.topic], on_assign=on_assign, on_revoke=lambda c, ps: emit(event="assigned", partitions=[]))
    t = Tracker(args)
    while not t.done():
        msgs = c.consume(num_messages=100, timeout=0.2)
        done = {}
        for m in msgs:
            if m.error():
                continue
            t.record(m.partition(), m.offset(), m.value())
            done[m.partition()] = m.offset() + 1
            if t.done():
                break
        if done and args.commit:
            try:
                c.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in done.items()], asynchronous=False)
                emit(event="committed", offsets=done)
            except Exception as e:  # noqa: BLE001 - a real application logs and carries on
                emit(event="commit_failed", error=str(e))
    c.close()
    emit(event="closed")


def run_kafka_python(args):
    from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    kw = {}
    if args.instance_id:
        kw["group_instance_id"] = args.instance_id
    c = KafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=args.group, auto_offset_reset="earliest",
        enable_auto_commit=args.auto_commit, auto_commit_interval_ms=200,
        session_timeout_ms=args.session_ms, heartbeat_interval_ms=max(args.session_ms // 3, 100),
        metadata_max_age_ms=1000, **kw)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit(event="assigned", partitions=[])

        def on_partitions_assigned(self, assigned):
            emit(event="assigned", partitions=sorted(p.partition for p in assigned))

    emit(event="subscribing")
    c.subscribe([args.topic], listener=Listener())
    t = Tracker(args)
    while not t.done():
        batches = c.poll(timeout_ms=200)
        done = {}
        for tp, msgs in batches.items():
            for m in msgs:
                if t.done():
                    break
                t.record(tp.partition, m.offset, m.value)
                done[tp.partition] = m.offset + 1
        if done and args.commit:
            try:
                c.commit({TopicPartition(args.topic, p): OffsetAndMetadata(o, "", -1) for p, o in done.items()})
                emit(event="committed", offsets=done)
            except Exception as e:  # noqa: BLE001
                emit(event="commit_failed", error=str(e))
    c.close()
    emit(event="closed")


async def run_aiokafka(args):
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit(event="assigned", partitions=[])

        def on_partitions_assigned(self, assigned):
            emit(event="assigned", partitions=sorted(p.partition for p in assigned))

    kw = {}
    if args.instance_id:
        kw["group_instance_id"] = args.instance_id
    c = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=args.group, auto_offset_reset="earliest",
        enable_auto_commit=args.auto_commit, auto_commit_interval_ms=200,
        session_timeout_ms=args.session_ms, heartbeat_interval_ms=max(args.session_ms // 3, 100),
        metadata_max_age_ms=1000, **kw)
    await c.start()
    emit(event="subscribing")
    c.subscribe([args.topic], listener=Listener())
    t = Tracker(args)
    try:
        while not t.done():
            batches = await c.getmany(timeout_ms=200)
            done = {}
            for tp, msgs in batches.items():
                for m in msgs:
                    if t.done():
                        break
                    t.record(tp.partition, m.offset, m.value)
                    done[tp.partition] = m.offset + 1
            if done and args.commit:
                try:
                    await c.commit({TopicPartition(args.topic, p): o for p, o in done.items()})
                    emit(event="committed", offsets=done)
                except Exception as e:  # noqa: BLE001
                    emit(event="commit_failed", error=str(e))
    finally:
        await c.stop()
    emit(event="closed")


def main():
    args = parse()
    if args.client == "confluent":
        run_confluent(args)
    elif args.client == "kafka-python":
        run_kafka_python(args)
    elif args.client == "aiokafka":
        asyncio.run(run_aiokafka(args))
    else:
        sys.exit(f"unknown client {args.client}")


if __name__ == "__main__":
    main()
