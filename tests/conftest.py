"""Shared fixtures. The local Kafka broker starts only when a test asks for `kafka_bootstrap`."""

import os

# Settings refuse to load without a key; tests never handle real identities.
os.environ.setdefault("SGI_PSEUDONYMISATION_KEY", "test-key-not-secret")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from settings import KafkaSettings  # noqa: E402
from sgi.kafka_local import KafkaLaunchError, LocalKafka, fetch_jars, free_port  # noqa: E402


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`host:port` of one broker shared by the session, on fresh ports so a developer's broker on
    9092 is never touched. A launch failure errors the tests with the launcher's message: integration
    tests are never skipped."""
    home = KafkaSettings().home
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    broker = LocalKafka(home=home, data_dir=tmp_path_factory.mktemp("kafka"),
                        port=port, controller_port=controller_port)
    try:
        fetch_jars(home)
        broker.start()
    except KafkaLaunchError as error:
        pytest.fail(f"local Kafka did not start: {error}", pytrace=False)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def fresh_topics(kafka_bootstrap: str) -> str:
    """The session broker with every pipeline and Faust topic deleted and the pipeline's created anew,
    so a test that runs a worker sees only its own messages. Returns the bootstrap address."""
    import time

    from kafka.admin import KafkaAdminClient

    from streams.kafka_admin import ensure_topics

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="sgi-test-reset")
    try:
        doomed = [t for t in admin.list_topics() if not t.startswith("__")]
        if doomed:
            admin.delete_topics(doomed)
        deadline = time.monotonic() + 60
        while set(doomed) & set(admin.list_topics()):
            if time.monotonic() > deadline:
                pytest.fail(f"topics not deleted within 60 s: {sorted(set(doomed) & set(admin.list_topics()))}")
            time.sleep(0.2)
    finally:
        admin.close()
    deadline = time.monotonic() + 60
    while True:  # creation can be refused for a moment while the deletions settle
        try:
            ensure_topics(kafka_bootstrap, default_partitions=4)
            break
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    # A new topic's partitions have no leader for a moment; a producer then gets NotLeaderForPartition.
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="sgi-test-reset")
    try:
        while True:
            described = admin.describe_topics()
            leaderless = [t["name"] for t in described if t["error_code"] or any(
                p["leader_id"] < 0 or p["error_code"] for p in t["partitions"])]
            if not leaderless:
                return kafka_bootstrap
            if time.monotonic() > deadline:
                pytest.fail(f"topics without a leader after 60 s: {sorted(leaderless)}")
            time.sleep(0.2)
    finally:
        admin.close()
