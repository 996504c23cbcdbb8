"""Two Kafka listeners on one node, as in a docker-compose file: INTERNAL for clients inside a
container network, EXTERNAL for clients on the host. Each client is told the broker addresses of
the listener it connected to (here: 127.0.0.1 vs localhost), and data flows through both.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from confluent_kafka import Consumer, Producer

from conftest import READY_TIMEOUT_S, SAMSA_BIN, free_port, kcat


def test_each_listener_advertises_its_own_address():
    d = tempfile.mkdtemp(prefix="samsa-listeners-")
    internal, external, controller = free_port(), free_port(), free_port()
    props = os.path.join(d, "node.properties")
    with open(props, "w") as f:
        f.write(
            "node.id=1\nprocess.roles=broker,controller\n"
            f"controller.quorum.voters=1@127.0.0.1:{controller}\n"
            f"listeners=INTERNAL://0.0.0.0:{internal},EXTERNAL://0.0.0.0:{external},CONTROLLER://127.0.0.1:{controller}\n"
            f"advertised.listeners=INTERNAL://127.0.0.1:{internal},EXTERNAL://localhost:{external}\n"
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
            f"inter.broker.listener.name=INTERNAL\nlog.dirs={d}/data\n")
    proc = subprocess.Popen([SAMSA_BIN, "server", props], stdout=subprocess.PIPE,
                            stderr=open(os.path.join(d, "node.log"), "w"), text=True)
    try:
        deadline = time.time() + READY_TIMEOUT_S
        while time.time() < deadline and "ready" not in (proc.stdout.readline() or "ready-exit"):
            pass
        assert proc.poll() is None, "samsa server exited"
        inside = kcat("-L", "-b", f"127.0.0.1:{internal}").decode()
        outside = kcat("-L", "-b", f"localhost:{external}").decode()
        assert f"broker 1 at 127.0.0.1:{internal}" in inside, inside
        assert f"broker 1 at localhost:{external}" in outside, outside
        p = Producer({"bootstrap.servers": f"localhost:{external}"})
        for i in range(10):
            p.produce("through-both", value=f"v{i}".encode())
        assert p.flush(30) == 0
        c = Consumer({"bootstrap.servers": f"127.0.0.1:{internal}", "group.id": "listeners",
                      "auto.offset.reset": "earliest"})
        c.subscribe(["through-both"])
        got = []
        deadline = time.time() + 30
        while len(got) < 10 and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value().decode())
        c.close()
        assert sorted(got) == sorted(f"v{i}" for i in range(10))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def test_a_tls_listener_without_a_key_store_is_refused_with_a_message():
    d = tempfile.mkdtemp(prefix="samsa-listeners-")
    try:
        r = subprocess.run(
            [SAMSA_BIN, "server", "--override", "node.id=1", "--override", "controller.quorum.voters=1@127.0.0.1:1",
             "--override", "listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
             "--override", "listener.security.protocol.map=SSL:SSL,CONTROLLER:PLAINTEXT",
             "--override", f"log.dirs={d}"],
            capture_output=True, text=True, timeout=30)
        assert r.returncode != 0
        assert "set ssl.keystore.location" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
