"""The Faust shell: one app, its topics, and the agents registered on it.

Agents only decode, call the pure core (streams/core), write tables back and send.
Order of the flow: agents/ingest.py -> agents/correlate.py -> sinks/kafka_sink.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from settings import KafkaSettings, WorkerSettings
from streams import topics as names
from streams.kafka_security import faust_credentials


@dataclass(frozen=True)
class Topics:
    """Faust handles for our topics; every value is raw bytes (JSON of a models/ record)."""

    inbound: faust.TopicT
    events: faust.TopicT
    deadletter: faust.TopicT
    resolve: faust.TopicT
    children: faust.TopicT
    place_stage: faust.TopicT
    place_links: faust.TopicT
    alerts: faust.TopicT
    child_states: faust.TopicT
    episodes: faust.TopicT


def _topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def build_app(kafka: KafkaSettings, worker: WorkerSettings) -> tuple[faust.App, Topics]:
    app = faust.App(
        worker.app_id,
        broker=f"kafka://{kafka.bootstrap}",
        broker_credentials=faust_credentials(kafka),  # None (PLAINTEXT) or SASL_SSL login
        store="memory://",  # tables are rebuilt from their changelog topics at start
        datadir=str(worker.data_dir),
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=False,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        # A child's state (up to a year of facts) is one table value and, after a merge, one Absorb
        # message; the brokers allow 8 MiB (message.max.bytes, see sgi/kafka_local.py and compose).
        producer_max_request_size=8 * 1024 * 1024,
    )
    topics = Topics(
        inbound=_topic(app, names.INBOUND),
        events=_topic(app, names.EVENTS),
        deadletter=_topic(app, names.DEADLETTER),
        resolve=_topic(app, names.RESOLVE),
        children=_topic(app, names.CHILDREN),
        place_stage=_topic(app, names.PLACE_STAGE),
        place_links=_topic(app, names.PLACE_LINKS),
        alerts=_topic(app, names.ALERTS),
        child_states=_topic(app, names.CHILD_STATES),
        episodes=_topic(app, names.EPISODES),
    )
    return app, topics
