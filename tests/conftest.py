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
    from streams.kafka_admin import reset_topics

    try:
        reset_topics(kafka_bootstrap, default_partitions=4)
    except TimeoutError as error:
        pytest.fail(str(error))
    return kafka_bootstrap
