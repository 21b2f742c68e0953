"""Every topic the pipeline uses, declared in one place: names, partitions, retention. A pure declaration;
streams/kafka_admin.py creates them and reads consumer lag."""

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


# What the worker's consumer group reads (the sink's group reads sinks.kafka_sink.SINK_TOPICS).
WORKER_TOPICS = (INBOUND, EVENTS, RESOLVE, CHILDREN, PLACE_STAGE)
