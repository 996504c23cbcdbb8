"""A full disk, with confluent-kafka: writes fail with KAFKA_STORAGE_ERROR and nothing acknowledged
is lost; the broker keeps serving reads and resumes writes on its own once there is space; a topic
created while the disk is full gets its replica as soon as space returns; a SIGKILL while the log
tail holds a torn batch is recovered on restart.

The partition logs sit on a small tmpfs (a real ENOSPC from the kernel), the metadata store on a
tmpfs of its own, so the quorum's writes do not depend on how full the log disk happens to be.
Mounting needs root, as the chaos suite's network namespaces do.
"""
import os
import shutil
import subprocess
import tempfile

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, kcat, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

LOG_DISK_MIB = 16
METADATA_DISK_MIB = 32
GROWN_LOG_DISK_MIB = 64
VALUE_BYTES = 1000
TOPIC = "full"
# The broker's answer reaches the application as it is.
NO_RETRIES = {"retries": 0, "enable.idempotence": False, "message.timeout.ms": 10000}


def mount_tmpfs(path, mib):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", path], check=True)


def value(prefix, i):
    head = f"{prefix}-{i}-".encode()
    return head + b"x" * (VALUE_BYTES - len(head))


def produce(bootstrap, topic, values, **config):
    """Produces `values`; returns (acknowledged values, {error name: count})."""
    acked, errors = [], {}

    def on_delivery(err, msg):
        if err is None:
            acked.append(msg.value())
        else:
            errors[err.name()] = errors.get(err.name(), 0) + 1

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **config})
    for v in values:
        while True:
            try:
                p.produce(topic, v, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0, "messages still queued after 120 s"
    return acked, errors


def read_all(bootstrap, topic):
    out = kcat("-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%s\n", timeout=120)
    return out.splitlines()


@pytest.fixture
def small_disk():
    base = tempfile.mkdtemp(prefix="samsa-full-disk-")
    data = os.path.join(base, "data")
    mount_tmpfs(data, LOG_DISK_MIB)
    mount_tmpfs(os.path.join(data, "metadata"), METADATA_DISK_MIB)
    yield base
    for mount in (os.path.join(data, "metadata"), data):
        subprocess.run(["umount", "-l", mount], check=False)
    shutil.rmtree(base, ignore_errors=True)


def test_a_full_disk_fails_writes_loses_nothing_and_recovers(small_disk):
    data = os.path.join(small_disk, "data")
    broker = Broker(data_dir=small_disk)
    try:
        # Fill the log disk: more than it holds, with an idempotent acks=all producer.
        count = LOG_DISK_MIB * 1024 * 1024 // VALUE_BYTES * 3 // 2
        acked, errors = produce(broker.bootstrap, TOPIC, [value("fill", i) for i in range(count)],
                                **{"enable.idempotence": True, "message.timeout.ms": 5000})
        assert acked and errors, f"acked {len(acked)}, errors {errors}: the disk never filled"
        assert shutil.disk_usage(data).free < 64 * 1024, "the log disk is not full"

        # Without retries the broker's answer reaches the application: KAFKA_STORAGE_ERROR. Writes
        # that still fit the pages a failed write already took may succeed first.
        probe = []
        for i in range(20):
            ok, errs = produce(broker.bootstrap, TOPIC, [value("probe", i) * 200], **NO_RETRIES)
            acked += ok
            probe.append(errs)
            if errs:
                break
        assert probe[-1] == {"KAFKA_STORAGE_ERROR": 1}, f"probe answers: {probe}"

        # A topic created now has no room for its replica: it answers KAFKA_STORAGE_ERROR too.
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("fresh", 1, 1)])["fresh"].result(30)
        _, errs = produce(broker.bootstrap, "fresh", [b"early"], **NO_RETRIES)
        assert errs == {"KAFKA_STORAGE_ERROR": 1}, errs

        # Still serving: every acknowledged write is there, once.
        assert broker.proc.poll() is None, "samsa exited on a full disk"
        stored = read_all(broker.bootstrap, TOPIC)
        assert sorted(stored) == sorted(acked), "acknowledged writes lost or duplicated"

        # Space returns: writes resume without a restart, and the new topic's replica opens.
        subprocess.run(["mount", "-o", f"remount,size={GROWN_LOG_DISK_MIB}m", data], check=True)
        more, errs = produce(broker.bootstrap, TOPIC, [value("more", i) for i in range(2000)],
                             **{"enable.idempotence": True, "message.timeout.ms": 30000})
        assert len(more) == 2000 and not errs, errs
        acked += more
        wait_for(lambda: produce(broker.bootstrap, "fresh", [b"late"], **NO_RETRIES)[0],
                 timeout=30, what="the replica of a topic created on a full disk to open")

        # SIGKILL with the torn batch of a failed write still in the log file: recovery cuts it.
        broker.kill()
        broker.start()
        stored = read_all(broker.bootstrap, TOPIC)
        assert sorted(stored) == sorted(acked), "acknowledged writes lost or duplicated after restart"
        assert read_all(broker.bootstrap, "fresh") == [b"late"]
    finally:
        broker.stop()


def test_starting_on_a_full_disk_says_so(small_disk):
    data = os.path.join(small_disk, "data")
    # Nothing but the filler: a fresh node whose metadata disk is full.
    filler = os.path.join(data, "metadata", "filler")
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", f"count={METADATA_DISK_MIB}"],
                   capture_output=True, check=False)
    assert shutil.disk_usage(os.path.join(data, "metadata")).free == 0
    with pytest.raises(RuntimeError, match="exited before it was ready"):
        Broker(data_dir=small_disk)
    with open(os.path.join(small_disk, "broker.log"), errors="replace") as f:
        log = f.read()
    assert "is full; free space there (or grow the volume) and start samsa again" in log, log[-2000:]
