"""Fixtures for the real-client compatibility tests.

Each test module gets its own samsa broker (`samsa dev`) on a free loopback port with a fresh data
directory; `broker.restart()` stops it gracefully (SIGTERM) and starts it again on the same port
and data, `broker.kill()` sends SIGKILL.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

SAMSA_BIN = os.environ.get("SAMSA_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "samsa"))
READY_TIMEOUT_S = 20


_handed_out = set()


def free_port():
    """A free loopback port not handed out before in this run: the kernel may give the same
    ephemeral port to two binds in a row once the first socket is closed (seen in a cluster
    fixture, where node 2's Kafka port was node 1's controller port)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class Broker:
    def __init__(self, overrides=(), data_dir=None):
        """`data_dir` (made here unless given) holds the broker's log and its data in `data/`."""
        self.overrides = [a for o in overrides for a in ("--override", o)]
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="samsa-client-test-")
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "broker.log")
        self.start()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [SAMSA_BIN, "dev", "--data-dir", os.path.join(self.data_dir, "data"), "--port", str(self.port),
             *self.overrides],
            stdout=subprocess.PIPE, stderr=log, text=True)
        deadline = time.time() + READY_TIMEOUT_S
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"samsa exited before it was ready; see {self.log_path}")
            if "ready" in line:
                return
        raise RuntimeError("samsa did not become ready in time")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=30)
            assert self.proc.returncode == 0, f"samsa exited with {self.proc.returncode}"
            assert "stopped" in out

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def restart(self):
        self.stop()
        self.start()


class Cluster:
    """`samsa server` nodes on loopback with fresh data directories: `voters` broker+controller
    nodes (ids 1..voters), then `observers` broker-only nodes."""

    def __init__(self, voters=3, extra="", per_node=None, observers=0):
        self.dir = tempfile.mkdtemp(prefix="samsa-cluster-test-")
        self.ports = {i: (free_port(), free_port()) for i in range(1, voters + observers + 1)}
        voter_list = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in self.ports.items() if i <= voters)
        for i, (k, c) in self.ports.items():
            roles = "broker,controller" if i <= voters else "broker"
            with open(self._config(i), "w") as f:
                f.write(f"node.id={i}\nprocess.roles={roles}\ncontroller.quorum.voters={voter_list}\n"
                        f"listeners=PLAINTEXT://127.0.0.1:{k},CONTROLLER://127.0.0.1:{c}\n"
                        f"log.dirs={self.dir}/node{i}\nbroker.session.timeout.ms=3000\nbroker.heartbeat.interval.ms=500\n"
                        f"{extra}{(per_node or {}).get(i, '')}")
        # All nodes start before any is waited for: each is ready only once a quorum formed.
        self.procs = {i: self._spawn(i) for i in self.ports}
        for i in self.ports:
            self._wait_ready(i)

    def _config(self, node):
        return os.path.join(self.dir, f"node{node}.properties")

    def _spawn(self, node):
        log = open(os.path.join(self.dir, f"node{node}.log"), "a")
        return subprocess.Popen([SAMSA_BIN, "server", self._config(node)], stdout=subprocess.PIPE, stderr=log, text=True)

    def _wait_ready(self, node):
        deadline = time.time() + READY_TIMEOUT_S * 3
        while time.time() < deadline:
            line = self.procs[node].stdout.readline()
            if not line:
                raise RuntimeError(f"node {node} exited before it was ready; see {self.dir}/node{node}.log")
            if "ready" in line:
                return
        raise RuntimeError(f"node {node} not ready in time")

    def bootstrap(self, node):
        return f"127.0.0.1:{self.ports[node][0]}"

    @property
    def all(self):
        return ",".join(self.bootstrap(i) for i in self.ports)

    def kill(self, node):
        self.procs[node].send_signal(signal.SIGKILL)
        self.procs[node].wait(timeout=10)

    def start(self, node):
        self.procs[node] = self._spawn(node)
        self._wait_ready(node)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            p.communicate(timeout=30)

    def restart_all(self):
        """Stops every node (SIGTERM), then starts them all again on the same data."""
        self.stop()
        self.procs = {i: self._spawn(i) for i in self.ports}
        for i in self.ports:
            self._wait_ready(i)


def _cluster_fixture(extra=""):
    c = Cluster(extra=extra)
    yield c
    try:
        c.stop()
    finally:
        shutil.rmtree(c.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    yield from _cluster_fixture()


@pytest.fixture(scope="module")
def group_cluster():
    """A cluster of its own for group tests that kill nodes, with short group sessions allowed."""
    yield from _cluster_fixture("group.min.session.timeout.ms=1000\ngroup.initial.rebalance.delay.ms=0\n")


@pytest.fixture(scope="module")
def failover_cluster():
    """A cluster of its own for tests that kill nodes."""
    yield from _cluster_fixture()


@pytest.fixture(scope="module")
def txn_cluster():
    """A cluster of its own for transaction tests that kill nodes (few transaction-state
    partitions, so the coordinator is easy to find)."""
    yield from _cluster_fixture("transaction.state.log.num.partitions=3\n")


@pytest.fixture(scope="module")
def broker():
    b = Broker()
    yield b
    try:
        b.stop()
    finally:
        shutil.rmtree(b.data_dir, ignore_errors=True)


@pytest.fixture
def topic():
    return "t-" + uuid.uuid4().hex[:12]


def expected_records(n, prefix):
    """n records with distinct keys, values and headers."""
    return [(f"{prefix}-k{i}".encode(), f"{prefix}-value-{i}".encode(), [("h", f"{i}".encode())]) for i in range(n)]


def kcat(*args, input=None, timeout=60):
    r = subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=timeout)
    assert r.returncode == 0, f"kcat {args} failed: {r.stderr.decode(errors='replace')}"
    return r.stdout


WORKER = os.path.join(os.path.dirname(__file__), "group_worker.py")


class GroupWorker:
    """A consumer-group member in its own process (see group_worker.py); its events are collected
    by a reader thread."""

    def __init__(self, client, bootstrap, group, topic, *options):
        import sys
        import threading
        self.events = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([sys.executable, WORKER, client, bootstrap, group, topic, *map(str, options)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        import json
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(event)

    def _of(self, kind):
        with self.lock:
            return [e for e in self.events if e["event"] == kind]

    @property
    def assignment(self):
        """The latest assignment, or None before the first one."""
        a = self._of("assigned")
        return a[-1]["partitions"] if a else None

    @property
    def records(self):
        return self._of("record")

    @property
    def committed(self):
        out = {}
        for e in self._of("committed"):
            out.update({int(p): o for p, o in e["offsets"].items()})
        return out

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self, timeout=60):
        """Waits for a worker that exits by itself (--max-records / --idle-exit-s)."""
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        assert self._of("closed"), f"worker did not close cleanly: {self.proc.stderr.read()[-2000:]}"

    def stop(self):
        if self.proc.poll() is None:
            self.kill()

    def history(self):
        """Everything but the records, for failure messages."""
        with self.lock:
            return [e for e in self.events if e["event"] != "record"]


def diagnose(workers, broker=None, lines=60):
    """Prints the workers' group events and the broker log's tail (shown when a test fails)."""
    for i, w in enumerate(workers):
        print(f"worker {i} (exit {w.proc.poll()}): {w.history()}")
    if broker is not None:
        with open(broker.log_path, errors="replace") as f:
            tail = [line for line in f if "openraft" not in line][-lines:]
        print("broker log tail:\n" + "".join(tail))


def start_server(props, log_path, *args, env=None):
    """`samsa server PROPS ARGS...` with its log appended to `log_path`; returns the process once
    it says it is ready (fails with the log's tail if it exits first)."""
    proc = subprocess.Popen([SAMSA_BIN, "server", props, *args], stdout=subprocess.PIPE,
                            stderr=open(log_path, "a"), text=True, env=env)
    deadline = time.time() + READY_TIMEOUT_S
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"samsa exited: {open(log_path).read()[-3000:]}")
        if "ready" in line:
            return proc
    raise RuntimeError("samsa not ready in time")


def wait_for(condition, timeout=60, interval=0.1, what="condition"):
    """Polls `condition` until it is truthy; fails with `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def group_broker():
    """A `samsa dev` broker whose group settings allow short sessions (crash tests finish fast)."""
    b = Broker(overrides=["group.min.session.timeout.ms=1000", "num.partitions=4"])
    yield b
    try:
        b.stop()
    finally:
        shutil.rmtree(b.data_dir, ignore_errors=True)


def sh(*args, input=None, check=True, timeout=120, env=None):
    """Runs a command (docker, docker-compose, ...); with `check`, fails the test on a non-zero exit."""
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert r.returncode == 0, f"{args} failed: {r.stdout[-1000:]} {r.stderr[-2000:]}"
    return r
