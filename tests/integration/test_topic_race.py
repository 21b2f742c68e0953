"""Several workers started at the same moment (`docker compose up --scale worker=3`) all create the
topics they need: creation is idempotent under a race, never TopicAlreadyExistsError."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from kafka.admin import KafkaAdminClient

from streams.kafka_admin import create_missing

pytestmark = pytest.mark.integration


def test_three_creators_racing_for_the_same_topics_all_succeed(kafka_bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    wanted = {f"race-{run}-{n}": (2, {"cleanup.policy": "compact"}) for n in range(8)}
    start = threading.Barrier(3)
    created: list[list[str]] = []
    errors: list[BaseException] = []

    def create() -> None:
        start.wait()
        try:
            created.append(create_missing(kafka_bootstrap, wanted, replication=1))
        except BaseException as error:  # noqa: BLE001 - any failure of a racer fails the test
            errors.append(error)

    racers = [threading.Thread(target=create) for _ in range(3)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
    assert errors == []
    assert len(created) == 3
    names = [name for names in created for name in names]
    assert sorted(names) == sorted(wanted)  # each topic created by exactly one of them
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:  # a new topic reaches the broker's metadata a moment after its creation is acknowledged
        deadline = time.monotonic() + 30
        while not set(wanted) <= set(admin.list_topics()):
            assert time.monotonic() < deadline, sorted(set(wanted) - set(admin.list_topics()))
            time.sleep(0.2)
    finally:
        admin.close()
