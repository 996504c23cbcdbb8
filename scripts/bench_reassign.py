"""The measurement of scripts/bench-reassign.sh (see there)."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))
from conftest import SAMSA_BIN, Cluster  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

SIZE_MB, THROTTLE = int(sys.argv[1]), int(sys.argv[2])


def samsa(*args, check=True):
    return subprocess.run([SAMSA_BIN, *args], capture_output=True, text=True, check=check, timeout=7200)


def move(c, topic, throttle):
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(1))
    admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                  replica_assignments={0: [1, 2, 3]})])
    admin.close()
    records = SIZE_MB * 1024
    t0 = time.perf_counter()
    samsa("bench", "produce", "--bootstrap-server", c.bootstrap(1), "--topic", topic, "--records",
          str(records), "--record-size", "1024", "--acks", "all")
    fill = time.perf_counter() - t0
    plan = os.path.join(c.dir, f"{topic}.json")
    with open(plan, "w") as f:
        json.dump({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [4, 2, 3]}]}, f)
    args = ["topic", "reassign", "--reassignment-json-file", plan, "--bootstrap-server", c.bootstrap(1)]
    t0 = time.perf_counter()
    samsa(*args, *(["--throttle", str(throttle)] if throttle else []))
    while samsa(*args, "--verify", check=False).returncode != 0:
        time.sleep(0.2)
    took = time.perf_counter() - t0
    return fill, took


c = Cluster(observers=1, extra="auto.leader.rebalance.enable=false\n")
try:
    rows = [("no throttle", *move(c, "move-free", None)),
            (f"throttle {THROTTLE / 1048576:.0f} MiB/s", *move(c, "move-throttled", THROTTLE))]
finally:
    c.stop()
print(f"{'move of ' + str(SIZE_MB) + ' MiB':<22}{'fill s':>8}{'move s':>8}{'MiB/s':>8}")
for name, fill, took in rows:
    print(f"{name:<22}{fill:>8.1f}{took:>8.1f}{SIZE_MB / took:>8.1f}")
