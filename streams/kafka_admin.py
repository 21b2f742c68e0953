"""Kafka operations on the declared topics (streams/topics.py): create what is missing, read consumer lag.

kafka-python's admin client, imported where it is used so that importing this module costs nothing.
`security`: the client's login and TLS options, streams.kafka_security.kafka_python_options(settings);
None for PLAINTEXT.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from streams.topics import TOPICS


def create_missing(bootstrap: str, wanted: dict[str, tuple[int, dict[str, str]]], replication: int,
                   security: Mapping[str, Any] | None = None) -> list[str]:
    """Create each topic of `wanted` (name -> (partitions, configs)) that does not exist yet; existing
    ones are left as they are. Returns the names this call created. Idempotent under a race: when
    several workers start at once, a topic another one created first counts as done."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sgi-topics", **(security or {}))
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=partitions, replication_factor=replication, topic_configs=configs)
            for name, (partitions, configs) in sorted(wanted.items())
            if name not in existing
        ]
        created = []
        for topic in missing:  # one at a time, so a topic created meanwhile fails alone
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue
            created.append(topic.name)
        return created
    finally:
        admin.close()


def ensure_topics(bootstrap: str, default_partitions: int, replication: int = 1,
                  security: Mapping[str, Any] | None = None) -> list[str]:
    """Create any missing pipeline topic (TOPICS). Returns the names created."""
    wanted = {
        spec.name: (spec.partitions or default_partitions,
                    {"retention.ms": str(spec.retention_ms), "cleanup.policy": spec.cleanup_policy})
        for spec in TOPICS
    }
    return create_missing(bootstrap, wanted, replication, security)


def ensure_changelogs(bootstrap: str, partitions_by_topic: dict[str, int], replication: int = 1,
                      security: Mapping[str, Any] | None = None) -> list[str]:
    """Create the Faust tables' changelog topics (compacted) before the worker starts: when Faust
    creates them itself, its first write can race the metadata and crash the agent
    (PartitionsMismatch: '... changelog topic has 0 partitions')."""
    wanted = {name: (partitions, {"cleanup.policy": "compact"}) for name, partitions in partitions_by_topic.items()}
    return create_missing(bootstrap, wanted, replication, security)


def group_lag(bootstrap: str, topics_by_group: dict[str, tuple[str, ...]],
              security: Mapping[str, Any] | None = None) -> tuple[int, dict[str, int]]:
    """(messages on each group's topics it has not committed yet, committed messages by topic).

    A partition a group has never committed counts from its earliest offset, so a group that has
    not started yet is behind, not caught up."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.admin import OffsetSpec

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sgi-lag", **(security or {}))
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sgi-lag", **(security or {}))
    try:
        every_topic = sorted({topic for topics in topics_by_group.values() for topic in topics})
        partitions = [TopicPartition(t, p) for t in every_topic for p in sorted(consumer.partitions_for_topic(t) or ())]
        earliest = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
        latest = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        committed_by_group = admin.list_group_offsets(list(topics_by_group))
        lag = 0
        by_topic: dict[str, int] = {}
        for group, topics in topics_by_group.items():
            committed = committed_by_group.get(group) or {}
            for tp in (tp for tp in partitions if tp.topic in topics):
                meta = committed.get(tp)
                offset = max(meta.offset if meta is not None else 0, earliest[tp].offset)
                lag += max(0, latest[tp].offset - offset)
                by_topic[tp.topic] = by_topic.get(tp.topic, 0) + offset - earliest[tp].offset
        return lag, by_topic
    finally:
        consumer.close()
        admin.close()


def reset_topics(bootstrap: str, default_partitions: int, timeout: float = 60.0,
                 security: Mapping[str, Any] | None = None) -> None:
    """Delete every non-internal topic, create the pipeline's anew and wait until each partition has a
    leader, so what runs next sees only its own messages (tests and benchmarks on a broker whose data
    nobody needs). Raises TimeoutError when a step does not finish within `timeout` seconds."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sgi-reset", **(security or {}))
    try:
        doomed = [t for t in admin.list_topics() if not t.startswith("__")]
        if doomed:
            admin.delete_topics(doomed)
        deadline = time.monotonic() + timeout
        while set(doomed) & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not deleted within {timeout:.0f} s: "
                                   f"{sorted(set(doomed) & set(admin.list_topics()))}")
            time.sleep(0.2)
        deadline = time.monotonic() + timeout
        while True:  # creation can be refused for a moment while the deletions settle
            try:
                ensure_topics(bootstrap, default_partitions, security=security)
                break
            except Exception as error:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topics not created within {timeout:.0f} s: {error!r}") from error
                time.sleep(0.5)
        # A new topic's partitions have no leader for a moment; a producer then gets NotLeaderForPartition.
        while True:
            leaderless = [t["name"] for t in admin.describe_topics() if t["error_code"] or any(
                p["leader_id"] < 0 or p["error_code"] for p in t["partitions"])]
            if not leaderless:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics without a leader after {timeout:.0f} s: {sorted(leaderless)}")
            time.sleep(0.2)
    finally:
        admin.close()
