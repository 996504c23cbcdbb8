"""The measurement of scripts/bench-quota.sh (see there)."""
import sys
import threading
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

BOOT, DURATION = sys.argv[1], float(sys.argv[2])


class Run:
    def __init__(self, client_id, seconds):
        self.samples, self.throttles = [], []
        self.p = Producer({"bootstrap.servers": BOOT, "client.id": client_id, "linger.ms": 5,
                           "throttle_cb": lambda e: self.throttles.append(e.throttle_time),
                           "queue.buffering.max.kbytes": 2048})
        self.seconds, self.delivered = seconds, 0
        self.thread = threading.Thread(target=self.run)

    def on_delivery(self, err, msg):
        if err is None:
            self.delivered += len(msg.value())
            self.samples.append((time.perf_counter(), self.delivered))

    def run(self):
        self.start = time.perf_counter()
        while time.perf_counter() - self.start < self.seconds:
            try:
                self.p.produce(TOPIC, b"b" * 1024, on_delivery=self.on_delivery)
            except BufferError:
                self.p.poll(0.02)
            self.p.poll(0)
        self.end = time.perf_counter()
        self.p.purge()
        self.p.flush(10)

    def rates(self):
        whole = self.delivered / (self.end - self.start)
        half = self.start + (self.end - self.start) / 2
        at_half = max((d for t, d in self.samples if t <= half), default=0)
        second = (self.delivered - at_half) / (self.end - half)
        return whole, second


TOPIC = f"bench-quota-{uuid.uuid4().hex[:8]}"
admin = AdminClient({"bootstrap.servers": BOOT})
admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(30)
quota = Run("quota-bench", DURATION)
free = Run("free", min(DURATION, 10))
quota.thread.start()
free.thread.start()
quota.thread.join()
free.thread.join()
print(f"{'producer':<22}{'seconds':>8}{'MB/s whole run':>16}{'MB/s 2nd half':>15}{'throttles':>11}")
for name, r in (("quota-bench (quota'd)", quota), ("free (no quota)", free)):
    whole, second = r.rates()
    print(f"{name:<22}{r.end - r.start:>8.0f}{whole / 1e6:>16.3f}{second / 1e6:>15.3f}{len(r.throttles):>11}")
