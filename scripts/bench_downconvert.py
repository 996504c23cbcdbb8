"""What a down-converted Fetch costs against a normal one (scripts/bench-downconvert.sh).

Fills one partition per codec with RECORDS records of 100-byte values about 2:1 compressible
(confluent-kafka, batches of up to 1 MiB), then reads each partition from offset 0 to its end with raw Fetch requests of
1 MiB per partition, at v4 (the stored v2 batches, sent with sendfile), v3 (down-converted to
message format v1) and v1 (format v0), ROUNDS times each, and prints records/s, MB/s of record
data received and the mean time per request. The client only frames the answer and finds the
next offset, so the broker's work is what differs."""
import os
import socket
import struct
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
RECORDS = int(sys.argv[2])
ROUNDS = int(sys.argv[3])
PARTITION_MAX_BYTES = 1 << 20
HOST, PORT = BOOTSTRAP.split(":")


def fill(topic, codec):
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": codec, "linger.ms": 20,
                  "batch.size": 1 << 20, "queue.buffering.max.messages": 1_000_000})
    # Values as compressible as typical JSON or logs (hex of random bytes: about 2:1).
    values = [os.urandom(50).hex().encode() for _ in range(1000)]
    for i in range(RECORDS):
        while True:
            try:
                p.produce(topic, key=b"k%d" % i, value=values[i % 1000], partition=0)
                break
            except BufferError:
                p.poll(0.01)
    p.flush(120)


def fetch_request(version, topic, offset, corr):
    t = topic.encode()
    body = struct.pack(">hhih", 1, version, corr, 5) + b"bench"
    body += struct.pack(">iii", -1, 0, 1)  # replica_id, max_wait_ms, min_bytes
    if version >= 3:
        body += struct.pack(">i", 64 << 20)  # max_bytes
    if version >= 4:
        body += struct.pack(">b", 0)  # isolation_level
    body += struct.pack(">ih", 1, len(t)) + t + struct.pack(">iiqi", 1, 0, offset, PARTITION_MAX_BYTES)
    if version >= 5:
        raise ValueError("v4 at most")
    return struct.pack(">i", len(body)) + body


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def records_of(version, resp, topic):
    """The records field of the single partition in a Fetch v1/v3/v4 response."""
    at = 4 + 4  # correlation id, throttle_time_ms
    at += 4 + 2 + len(topic) + 4  # topics array, name, partitions array
    _, error, _hw = struct.unpack(">ihq", resp[at:at + 14])
    assert error == 0, f"Fetch v{version} error {error}"
    at += 14
    if version >= 4:
        at += 8  # last_stable_offset
        (aborted,) = struct.unpack(">i", resp[at:at + 4])
        at += 4 + max(aborted, 0) * 16
    (size,) = struct.unpack(">i", resp[at:at + 4])
    return resp[at + 4:at + 4 + size]


def next_offset(version, records):
    """The offset after the last whole entry (v2 batch or v0/v1 message) in `records`."""
    at, nxt = 0, None
    while at + 12 <= len(records):
        offset, size = struct.unpack(">qi", records[at:at + 12])
        if at + 12 + size > len(records):
            break
        if version >= 4:
            (delta,) = struct.unpack(">i", records[at + 23:at + 27])
            nxt = offset + delta + 1
        else:
            nxt = offset + 1
        at += 12 + size
    return nxt


def read_all(version, topic):
    s = socket.create_connection((HOST, int(PORT)))
    offset, corr, data, requests = 0, 0, 0, 0
    started = time.perf_counter()
    while offset < RECORDS:
        corr += 1
        s.sendall(fetch_request(version, topic, offset, corr))
        (size,) = struct.unpack(">i", recv_exact(s, 4))
        records = records_of(version, recv_exact(s, size), topic.encode())
        data += len(records)
        requests += 1
        nxt = next_offset(version, records)
        assert nxt is not None and nxt > offset, f"no progress at {offset}"
        offset = nxt
    elapsed = time.perf_counter() - started
    s.close()
    return elapsed, data, requests


def main():
    print(f"{RECORDS} records of 100 B per topic, fetches of 1 MiB, best of {ROUNDS}")
    print(f"{'codec':<8} {'fetch':<22} {'records/s':>12} {'MB/s':>8} {'ms/request':>11} {'vs v4':>8}")
    for codec in ["none", "lz4", "gzip"]:
        topic = f"downconvert-{codec}-{int(time.time())}"
        fill(topic, codec)
        base = None
        for version, label in [(4, "v4 (stored, sendfile)"), (3, "v3 (to format v1)"),
                               (1, "v1 (to format v0)")]:
            best = min((read_all(version, topic) for _ in range(ROUNDS)), key=lambda r: r[0])
            elapsed, data, requests = best
            rate = RECORDS / elapsed
            base = base or rate
            print(f"{codec:<8} {label:<22} {rate:>12,.0f} {data / elapsed / 1e6:>8.1f} "
                  f"{elapsed / requests * 1000:>11.2f} {rate / base:>7.3f}x")


main()
