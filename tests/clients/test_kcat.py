"""kcat 1.7 (librdkafka 2.0.2): produce with every acks setting, idempotence and codec, then read
everything back with exact keys, values, headers and offsets; query offsets; survive a restart."""
import json

import pytest

from conftest import kcat

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def produce(broker, topic, lines, *extra):
    payload = "".join(f"{k}:{v}\n" for k, v in lines).encode()
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-K:", "-H", "src=kcat", *extra, input=payload)


def consume(broker, topic, count):
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", str(count), "-e",
               "-f", "%p|%o|%k|%s|%h\\n")
    rows = []
    for line in out.decode().splitlines():
        p, o, k, v, h = line.split("|")
        rows.append((int(p), int(o), k, v, h))
    return rows


@pytest.mark.parametrize("acks", ["0", "1", "all"])
@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_read_back_exactly(broker, topic, acks, codec):
    lines = [(f"key{i}", f"value-{i}-{codec}") for i in range(200)]
    produce(broker, topic, lines, "-X", f"acks={acks}", "-z", codec)
    rows = consume(broker, topic, len(lines))
    assert [(r[2], r[3]) for r in rows] == lines
    assert [r[1] for r in rows] == list(range(len(lines)))
    assert all(r[4] == "src=kcat" for r in rows)


def test_idempotent_producer(broker, topic):
    lines = [(f"k{i}", f"v{i}") for i in range(500)]
    produce(broker, topic, lines, "-X", "enable.idempotence=true", "-z", "lz4")
    rows = consume(broker, topic, len(lines))
    assert [(r[2], r[3]) for r in rows] == lines


def test_metadata_and_offset_queries(broker, topic):
    produce(broker, topic, [("a", "1"), ("b", "2"), ("c", "3")])
    md = json.loads(kcat("-b", broker.bootstrap, "-L", "-J", "-t", topic))
    assert md["brokers"][0]["id"] == 1
    (t,) = md["topics"]
    assert t["topic"] == topic and len(t["partitions"]) == 1 and t["partitions"][0]["leader"] == 1
    # -Q: the offset for a timestamp before every record is the first offset.
    out = kcat("-b", broker.bootstrap, "-Q", "-t", f"{topic}:0:0").decode()
    assert f"{topic} [0] offset 0" in out


def test_everything_survives_a_restart(broker, topic):
    lines = [(f"k{i}", f"v{i}") for i in range(300)]
    produce(broker, topic, lines, "-z", "zstd")
    broker.restart()
    rows = consume(broker, topic, len(lines))
    assert [(r[1], r[2], r[3]) for r in rows] == [(i, k, v) for i, (k, v) in enumerate(lines)]


def test_acknowledged_writes_survive_sigkill(broker, topic):
    lines = [(f"k{i}", f"v{i}") for i in range(100)]
    produce(broker, topic, lines, "-X", "acks=1")
    broker.kill()
    broker.start()
    rows = consume(broker, topic, len(lines))
    assert [(r[2], r[3]) for r in rows] == lines
