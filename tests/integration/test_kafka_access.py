"""The secured local broker (`sgi kafka start --secure`): SASL_SSL with SCRAM logins and ACLs.

Its own broker, not the session's: a partner may write the inbound topic and read nothing, the sink reads
only the derived topics it consumes, and a client without a valid login gets nothing at all. Each denial is
the specific Kafka error (authorization or authentication failed), and each has a control that succeeds
with the right login, so a denial never passes for an unrelated reason.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import errors as aio_errors
from aiokafka.conn import create_conn
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import GroupAuthorizationFailedError, KafkaTimeoutError, TopicAuthorizationFailedError
from pydantic import SecretStr

from settings import KafkaSettings
from sgi.kafka_local import KafkaLaunchError, LocalKafka, fetch_jars, free_port
from sinks.kafka_sink import GROUP_ID as SINK_GROUP
from streams.kafka_admin import ensure_topics
from streams.kafka_security import aiokafka_options, kafka_python_options
from streams.topics import ALERTS, EVENTS, INBOUND

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    home = KafkaSettings().home
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    broker = LocalKafka(home=home, data_dir=tmp_path_factory.mktemp("kafka-secured"), port=port,
                        controller_port=controller_port, secure=True)
    try:
        fetch_jars(home)
        broker.start(timeout=120)
    except KafkaLaunchError as error:
        pytest.fail(f"secured local Kafka did not start: {error}", pytrace=False)
    try:
        admin = broker.client_settings("admin")
        ensure_topics(broker.bootstrap, default_partitions=1, security=kafka_python_options(admin))
        yield broker
    finally:
        broker.stop()


def _options(broker: LocalKafka, principal: str) -> dict[str, Any]:
    return {"bootstrap_servers": broker.bootstrap, **kafka_python_options(broker.client_settings(principal))}


def _produce(broker: LocalKafka, principal: str, topic: str, value: bytes, idempotent: bool = True) -> int:
    producer = KafkaProducer(**_options(broker, principal), acks="all", max_block_ms=20000,
                             enable_idempotence=idempotent)
    try:
        return int(producer.send(topic, key=b"k", value=value).get(timeout=30).offset)
    finally:
        producer.close()


def _read_until(consumer: KafkaConsumer, wanted: bytes) -> list[bytes]:
    """Values read until `wanted` comes (or 20 s pass): stops at once instead of waiting for silence."""
    read: list[bytes] = []
    for _ in range(10):
        for records in consumer.poll(timeout_ms=2000).values():
            read += [record.value for record in records]
        if wanted in read:
            break
    return read


def _fetch_from_start(broker: LocalKafka, principal: str, topic: str, wanted: bytes) -> list[bytes]:
    """Reads a topic's partition 0 without a group (a group would be refused first, hiding the topic's ACL)."""
    consumer = KafkaConsumer(**_options(broker, principal), group_id=None)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        return _read_until(consumer, wanted)
    finally:
        consumer.close()


def _end_offset(broker: LocalKafka, principal: str, topic: str) -> int:
    consumer = KafkaConsumer(**_options(broker, principal), group_id=None)
    try:
        partition = TopicPartition(topic, 0)
        return int(consumer.end_offsets([partition])[partition])
    finally:
        consumer.close()


def test_logins_and_ca_are_owner_only_files(secured: LocalKafka) -> None:
    for path in (secured.access_file, secured.ca_file, secured.ca_file.parent / "broker.pem",
                 secured.data_dir / "server.properties"):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    assert "BEGIN PRIVATE KEY" not in secured.ca_file.read_text()  # the CA's key is not kept
    properties = (secured.data_dir / "server.properties").read_text()
    assert "allow.everyone.if.no.acl.found=false" in properties
    assert "PLAINTEXT://" not in properties  # no unauthenticated client listener


def test_partner_writes_inbound_and_reads_nothing(secured: LocalKafka) -> None:
    offset = _produce(secured, "partner", INBOUND, b'{"from": "partner"}')
    assert offset >= 0
    # The message is there (the admin reads it); the partner itself cannot read it back.
    assert b'{"from": "partner"}' in _fetch_from_start(secured, "admin", INBOUND, b'{"from": "partner"}')
    with pytest.raises(TopicAuthorizationFailedError):
        _fetch_from_start(secured, "partner", INBOUND, b'{"from": "partner"}')
    with pytest.raises(TopicAuthorizationFailedError):
        _end_offset(secured, "partner", ALERTS)
    with pytest.raises(TopicAuthorizationFailedError):
        _produce(secured, "partner", EVENTS, b"forged fact")


def test_sink_reads_derived_topics_only(secured: LocalKafka) -> None:
    _produce(secured, "admin", ALERTS, b'{"alert": 1}')
    consumer = KafkaConsumer(ALERTS, **_options(secured, "sink"), group_id=SINK_GROUP,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        read = _read_until(consumer, b'{"alert": 1}')
        consumer.commit()  # the sink commits its offsets in its own group
    finally:
        consumer.close()
    assert b'{"alert": 1}' in read

    _produce(secured, "partner", INBOUND, b'{"raw": "identifiers"}')
    with pytest.raises(TopicAuthorizationFailedError):
        _end_offset(secured, "sink", INBOUND)
    # Not idempotent: an idempotent producer is already refused its producer id (the sink may write
    # nowhere), before the topic's own ACL is asked.
    with pytest.raises(TopicAuthorizationFailedError):
        _produce(secured, "sink", ALERTS, b"forged alert", idempotent=False)
    other_group = KafkaConsumer(ALERTS, **_options(secured, "sink"), group_id="not-the-sink")
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            _read_until(other_group, b'{"alert": 1}')
    finally:
        other_group.close()


def _connect(broker: LocalKafka, **options: Any) -> None:
    """One connection with aiokafka (Faust's client): TLS, then the SASL login, then API versions."""

    async def attempt() -> None:
        conn = await create_conn(broker.host, broker.port, request_timeout_ms=15000, **options)
        conn.close()

    asyncio.run(attempt())


def _login(broker: LocalKafka, username: str, password: str, cafile: Path | None) -> dict[str, Any]:
    settings = KafkaSettings(bootstrap=broker.bootstrap, security_protocol="SASL_SSL", username=username,
                             password=SecretStr(password), ssl_cafile=cafile)
    return aiokafka_options(settings)


def test_a_client_without_a_valid_login_gets_nothing(secured: LocalKafka) -> None:
    real_password = secured.client_settings("partner").password.get_secret_value()
    _connect(secured, **_login(secured, "partner", real_password, secured.ca_file))  # the control

    with pytest.raises(aio_errors.SaslAuthenticationFailed, match="invalid credentials"):
        _connect(secured, **_login(secured, "partner", "not-the-password", secured.ca_file))
    with pytest.raises(aio_errors.SaslAuthenticationFailed, match="invalid credentials"):
        _connect(secured, **_login(secured, "intruder", real_password, secured.ca_file))
    # A client that does not trust the local CA refuses the broker before sending any password.
    with pytest.raises(ssl.SSLCertVerificationError):
        _connect(secured, **_login(secured, "partner", real_password, None))
    # PLAINTEXT to the TLS port: the broker drops the connection at the first byte.
    with pytest.raises(aio_errors.KafkaConnectionError, match="closed"):
        _connect(secured)

    # kafka-python over PLAINTEXT never gets as far as a topic list.
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(bootstrap_servers=secured.bootstrap, bootstrap_timeout_ms=5000,
                         request_timeout_ms=5000).list_topics()

