"""The local broker launcher: a real round trip, a clear error without Maven, and a clean stop."""

import os
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from settings import KafkaSettings
from sgi.kafka_local import KafkaLaunchError, LocalKafka, fetch_jars, free_port

pytestmark = pytest.mark.integration


def test_messages_round_trip_in_order(kafka_bootstrap: str) -> None:
    topic = "launcher-round-trip"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    finally:
        admin.close()

    sent = [f"message-{number}".encode() for number in range(10)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for value in sent:
            producer.send(topic, key=b"child-1", value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id="launcher-test",
                             auto_offset_reset="earliest", consumer_timeout_ms=20_000)
    try:
        received = []
        for record in consumer:
            received.append(record.value)
            if len(received) == len(sent):
                break
    finally:
        consumer.close()
    assert received == sent


def test_fetch_without_maven_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    (tmp_path / "home" / "lib").mkdir(parents=True)

    with pytest.raises(KafkaLaunchError, match="mvn"):
        fetch_jars(tmp_path / "home")


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    settings = {"home": KafkaSettings().home, "data_dir": tmp_path / "kafka", "port": port,
                "controller_port": controller_port}
    broker = LocalKafka(**settings)
    broker.start()
    pid = broker.pid()
    assert pid is not None and broker.is_running()

    # Stop from a fresh object, as `sgi kafka stop` does from another shell: only the pid file links them.
    LocalKafka(**settings).stop()

    assert not broker.is_running()
    # The JVM's main thread can show as a zombie while its other threads still exit; the process is
    # gone (and reaped by is_running's poll) within moments.
    deadline = time.monotonic() + 30
    while True:
        broker.is_running()  # reaps our child once it has fully exited
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, f"broker process {pid} still exists 30 s after stop"
        time.sleep(0.2)
    assert "not running" in broker.status()
    assert not (tmp_path / "kafka" / "kafka.pid").exists()
