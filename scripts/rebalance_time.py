"""Measures consumer-group rebalance time on a `samsa dev` broker with confluent-kafka members
(librdkafka, each in its own process, see tests/clients/group_worker.py):

  join:  a group of 4 is stable; a 5th member subscribes. Time from its subscribe until all 5
         members hold a new assignment covering every partition.
  crash: a group of 4 is stable; one member is SIGKILLed (no LeaveGroup). Time from the kill
         until the 3 survivors hold an assignment covering every partition. This includes the
         member's session timeout, which dominates it; the remainder is printed too.

Usage: python scripts/rebalance_time.py [RUNS] [SESSION_MS]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "clients"))
from conftest import Broker, GroupWorker, wait_for  # noqa: E402

PARTITIONS = 8


def latest_after(worker, t0):
    """The worker's last assignment announced after t0, or None."""
    with worker.lock:
        a = [e for e in worker.events if e["event"] == "assigned" and e["t"] >= t0]
    return a[-1] if a else None


def settled(workers, t0):
    """When every worker's post-t0 assignment together covers every partition: the time of the
    last such announcement, else None."""
    last = [latest_after(w, t0) for w in workers]
    if any(e is None for e in last):
        return None
    owned = sorted(p for e in last for p in e["partitions"])
    return max(e["t"] for e in last) if owned == list(range(PARTITIONS)) else None


def stable_group(bootstrap, topic, n, session_ms):
    group = "rb-" + uuid.uuid4().hex[:8]
    workers = [GroupWorker("confluent", bootstrap, group, topic, "--session-ms", session_ms) for _ in range(n)]
    wait_for(lambda: settled(workers, 0), 60, what="a stable group")
    time.sleep(0.5)
    return group, workers


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    session_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
    broker = Broker(overrides=["group.min.session.timeout.ms=1000"])
    try:
        topic = "rebalance-" + uuid.uuid4().hex[:6]
        subprocess.run([os.environ.get("SAMSA_BIN", "target/release/samsa"), "topic", "create", topic,
                        "--partitions", str(PARTITIONS), "--bootstrap-server", broker.bootstrap],
                       check=True, capture_output=True)
        joins, crashes = [], []
        for run in range(runs):
            group, workers = stable_group(broker.bootstrap, topic, 4, session_ms)
            fifth = GroupWorker("confluent", broker.bootstrap, group, topic, "--session-ms", session_ms)
            workers.append(fifth)
            t0 = wait_for(lambda: next((e["t"] for e in fifth.events if e["event"] == "subscribing"), None), 30)
            done = wait_for(lambda: settled(workers, t0), 60, what="the group absorbing a 5th member")
            joins.append((done - t0) * 1000)
            for w in workers:
                w.stop()
            group, workers = stable_group(broker.bootstrap, topic, 4, session_ms)
            t0 = time.time()
            workers[0].kill()
            done = wait_for(lambda: settled(workers[1:], t0), 120, what="the survivors taking over")
            crashes.append((done - t0) * 1000)
            for w in workers:
                w.stop()
            print(f"run {run + 1}: join {joins[-1]:.0f} ms, crash {crashes[-1]:.0f} ms", flush=True)
        print(f"\ngroup of 4, {PARTITIONS} partitions, confluent-kafka members, session.timeout.ms={session_ms}, "
              f"{runs} runs, {os.cpu_count()} cores")
        print(f"member joins:   median {statistics.median(joins):.0f} ms, max {max(joins):.0f} ms")
        print(f"member crashes: median {statistics.median(crashes):.0f} ms, max {max(crashes):.0f} ms "
              f"(median {statistics.median(crashes) - session_ms:.0f} ms after the session timeout)")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
