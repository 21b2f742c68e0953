"""Every topic the pipeline uses, declared in one place and created idempotently at start."""

from __future__ import annotations

from dataclasses import dataclass

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

INBOUND = "safeguarding.inbound.v1"
EVENTS = "safeguarding.events.v1"
DEADLETTER = "safeguarding.deadletter.v1"
# Identity resolution needs one view of every link, so it reads one partition in order.
RESOLVE = "safeguarding.resolve.v1"
CHILDREN = "safeguarding.children.v1"  # keyed by canonical child key: facts, merges, absorbs
PLACE_STAGE = "safeguarding.placestage.v1"  # keyed by place key: links, retractions, ticks
PLACE_LINKS = "safeguarding.placelinks.v1"  # keyed by place key: the links alone, for storage
ALERTS = "safeguarding.alerts.v1"  # keyed by alert id
CHILD_STATES = "safeguarding.childstates.v1"  # keyed by child key
EPISODES = "safeguarding.episodes.v1"  # keyed by child key + episode ref


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int | None  # None: the configured default (KafkaSettings.partitions)
    retention_ms: int
    cleanup_policy: str = "delete"
    why: str = ""


TOPICS: tuple[TopicSpec, ...] = (
    # Raw identifiers: keep only as long as a worker outage could last.
    TopicSpec(INBOUND, None, 3 * DAY_MS, why="raw partner events; short retention, tight ACLs"),
    TopicSpec(EVENTS, None, 35 * DAY_MS, why="validated, pseudonymised facts keyed by child"),
    # Holds the original bytes (raw identifiers): same short retention as inbound.
    TopicSpec(DEADLETTER, None, 3 * DAY_MS, why="rejected messages with reasons, for partner developers"),
    TopicSpec(RESOLVE, 1, 35 * DAY_MS, why="facts for identity resolution, one ordered partition"),
    TopicSpec(CHILDREN, None, 35 * DAY_MS, why="facts and merges keyed by canonical child"),
    TopicSpec(PLACE_STAGE, None, 35 * DAY_MS, why="messages for the hotspot stage keyed by place"),
    TopicSpec(PLACE_LINKS, None, 35 * DAY_MS, why="child-place links keyed by place, for storage"),
    TopicSpec(ALERTS, None, -1, "compact", why="latest state of each alert, keyed by alert id"),
    TopicSpec(CHILD_STATES, None, -1, "compact", why="latest snapshot per child"),
    TopicSpec(EPISODES, None, -1, "compact", why="latest state per missing episode"),
)


def _create_missing(bootstrap: str, wanted: dict[str, tuple[int, dict[str, str]]], replication: int) -> list[str]:
    """Create each topic of `wanted` (name -> (partitions, configs)) that does not exist yet; existing
    ones are left as they are. Returns the names created."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sgi-topics")
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=partitions, replication_factor=replication, topic_configs=configs)
            for name, (partitions, configs) in sorted(wanted.items())
            if name not in existing
        ]
        if missing:
            admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        admin.close()


def ensure_topics(bootstrap: str, default_partitions: int, replication: int = 1) -> list[str]:
    """Create any missing pipeline topic (TOPICS). Returns the names created."""
    wanted = {
        spec.name: (spec.partitions or default_partitions,
                    {"retention.ms": str(spec.retention_ms), "cleanup.policy": spec.cleanup_policy})
        for spec in TOPICS
    }
    return _create_missing(bootstrap, wanted, replication)


def ensure_changelogs(bootstrap: str, partitions_by_topic: dict[str, int], replication: int = 1) -> list[str]:
    """Create the Faust tables' changelog topics (compacted) before the worker starts: when Faust
    creates them itself, its first write can race the metadata and crash the agent
    (PartitionsMismatch: '... changelog topic has 0 partitions')."""
    wanted = {name: (partitions, {"cleanup.policy": "compact"}) for name, partitions in partitions_by_topic.items()}
    return _create_missing(bootstrap, wanted, replication)


# What the worker's consumer group reads (the sink's group reads sinks.kafka_sink.SINK_TOPICS).
WORKER_TOPICS = (INBOUND, EVENTS, RESOLVE, CHILDREN, PLACE_STAGE)


def group_lag(bootstrap: str, topics_by_group: dict[str, tuple[str, ...]]) -> tuple[int, dict[str, int]]:
    """(messages on each group's topics it has not committed yet, committed messages by topic).

    A partition a group has never committed counts from its earliest offset, so a group that has
    not started yet is behind, not caught up."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.admin import OffsetSpec

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sgi-lag")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sgi-lag")
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
