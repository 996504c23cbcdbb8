"""Clients on old protocol versions (issue 19): kafka-python told it talks to an old broker
(`api_version`) sends the versions Kafka 3.9 still serves and Kafka 4 dropped; a version samsa
does not serve closes the connection with one WARN naming the client."""
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from conftest import expected_records


def test_list_offsets_v0_answers_old_clients(broker, topic):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for k, v, h in expected_records(25, "old"):
        p.send(topic, key=k, value=v, headers=h, partition=0)
    p.flush(30)
    p.close()
    # api_version (0, 9): Metadata v0 and ListOffsets v0, as Burrow and old Saramas send them.
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=(0, 9), group_id=None,
                      enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        assert c.end_offsets([tp]) == {tp: 25}
        assert c.beginning_offsets([tp]) == {tp: 0}
    finally:
        c.close()


def test_an_unserved_version_is_explained_in_the_broker_log(broker, topic):
    # Fetch v1 (api_version 0.9) is not served: the connection closes, and the broker says why.
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=(0, 9), group_id=None,
                      client_id="legacy-fetcher", consumer_timeout_ms=3000)
    try:
        c.assign([TopicPartition(topic, 0)])
        c.seek_to_beginning()
        list(c)
    except Exception:  # noqa: BLE001 - the client sees a closed connection; that is the point
        pass
    finally:
        c.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(broker.log_path) as f:
            lines = [l for l in f if "closed a client's connection" in l and "legacy-fetcher" in l]
        if lines:
            break
        time.sleep(0.2)
    assert lines, "a WARN names the client whose connection was closed"
    assert "api=\"Fetch\"" in lines[0] and "api_version=1" in lines[0]
