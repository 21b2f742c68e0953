"""The sink process: derived topics -> ClickHouse, at least once, with no duplicates after FINAL.

poll -> decode each value into its derived model -> rows -> BatchWriter -> when a flush is due,
write every buffered row, then commit the consumed offsets. Offsets are committed only after the
insert succeeded, so a crash between the two re-reads those messages on restart; their rows land
again under the same keys (and usually the same deduplication token), so nothing is doubled.

A row the store cannot take never stops the sink: the writer retries what is retryable, then records
the row in `sink_rejects` (never its values) and the flush goes on, so its offset is committed like any
other (see sinks.clickhouse.BatchWriter). A record the mapping itself fails on is rejected the same way.

The events topic carries Fact JSON and has no canonical child key yet: `events.child_key` is
`child_keys[0]`, the Fact's topic key (see sinks.rows.event_row).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from settings import ClickHouseSettings, KafkaSettings, RetentionSettings
from sinks.clickhouse import BatchWriter, connect
from sinks.migrate import migrate
from sinks.rows import Row, decode, kind_of, local_day, rows_for, shipped_zone
from streams.kafka_security import kafka_python_options
from streams.topics import ALERTS, CHILD_STATES, DEADLETTER, EPISODES, EVENTS, PLACE_LINKS

log = logging.getLogger(__name__)

SINK_TOPICS: tuple[str, ...] = (EVENTS, ALERTS, EPISODES, CHILD_STATES, PLACE_LINKS, DEADLETTER)
GROUP_ID = "sgi-sink"
POLL_TIMEOUT_MS = 200


@dataclass
class SinkProgress:
    """Running totals since the sink started, reported after every commit."""

    messages: int = 0  # read from Kafka
    rows: int = 0  # written to ClickHouse
    committed: int = 0  # messages whose offsets are committed
    flushes: int = 0
    undecodable: int = 0  # counted as deadletter rows with error_loc 'sink.decode'
    tombstones: int = 0  # null values on the compacted topics: nothing to store
    retries: int = 0
    rejected: int = 0  # rows recorded in sink_rejects instead of their table
    values_fitted: int = 0  # out-of-range values stored as NULL or the nearest storable value


def undecodable_rows(topic: str, partition: int, offset: int, timestamp_ms: int, error: Exception,
                     zone: ZoneInfo) -> list[Row]:
    """A derived message the sink cannot read is a pipeline bug: it is counted in `deadletter`
    under its own topic (error_loc 'sink.decode') rather than dropped or allowed to block the sink.
    The message text is not kept; neither are pydantic's input values."""
    if isinstance(error, ValidationError):
        reasons = [
            f"{'.'.join(str(p) for p in e['loc']) or '(message)'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        ]
    else:
        reasons = [type(error).__name__]
    received = datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, UTC)
    hour = received.replace(minute=0, second=0, microsecond=0)
    return [
        {
            "day": local_day(received, zone),
            "hour": hour,
            "received_at": received,
            "agency": None,
            "event_type": None,
            "error_index": index,
            "error_count": len(reasons),
            "error_loc": "sink.decode",
            "error_msg": reason[:300],
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "size_bytes": 0,
        }
        for index, reason in enumerate(reasons)
    ]


METADATA_WAIT_S = 30.0


def wait_for_partitions(consumer: Any, topics: list[str], stop: threading.Event,
                        timeout: float = METADATA_WAIT_S) -> None:
    """Wait (bounded) until the consumer knows every topic's partitions. A consumer that joins its group
    before it has the metadata is assigned nothing ("No partition metadata") and sits idle until its
    next metadata refresh, five minutes later. A topic still unknown after `timeout` (not created yet)
    is logged and subscribed to anyway: it is assigned when it appears."""
    deadline = time.monotonic() + timeout
    missing = list(topics)
    while missing and not stop.is_set():
        missing = [topic for topic in missing if not consumer.partitions_for_topic(topic)]
        if missing and time.monotonic() > deadline:
            log.warning("no partition metadata for %s after %.0f s; subscribing anyway", ", ".join(missing), timeout)
            return
        if missing:
            stop.wait(0.5)


def run_sink(
    kafka: KafkaSettings,
    ch: ClickHouseSettings,
    stop: threading.Event,
    topics: Sequence[str] | Mapping[str, str] = SINK_TOPICS,
    batch_size: int = 5000,
    max_wait: float = 1.0,
    on_progress: Callable[[SinkProgress], None] | None = None,
    *,
    group_id: str = GROUP_ID,
    retention: RetentionSettings | None = None,
    create_schema: bool = True,
    after_flush: Callable[[], None] | None = None,
    zone: ZoneInfo | None = None,
) -> SinkProgress:
    """Consume `topics` into ClickHouse until `stop` is set, then flush, commit and return the totals.

    topics: topic names known to sinks.rows.KIND_BY_TOPIC, or a mapping topic -> kind (table name)
    for topics named otherwise (tests). `after_flush` runs after each successful flush and before
    its commit: a test hook to simulate a crash in between. `zone`: the rules config's time zone, for
    local days and ages (None: the shipped config's). Raises if a flush still fails after the
    writer's retries; offsets of unwritten rows are then not committed.
    """
    from kafka import KafkaConsumer
    from kafka.errors import CommitFailedError

    zone = zone or shipped_zone()
    kind_by_topic = dict(topics) if isinstance(topics, Mapping) else {topic: kind_of(topic) for topic in topics}
    for kind in kind_by_topic.values():
        kind_of(kind)  # fail fast on an unknown kind
    client = connect(ch)
    consumer = None
    progress = SinkProgress()
    try:
        if create_schema:
            migrate(client, ch.database, retention, time_zone=zone.key)
        writer = BatchWriter(client, database=ch.database, batch_size=batch_size, max_wait=max_wait)
        consumer = KafkaConsumer(
            bootstrap_servers=kafka.bootstrap,
            group_id=group_id,
            client_id=f"{group_id}-{ch.database}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **kafka_python_options(kafka),
        )
        wait_for_partitions(consumer, list(kind_by_topic), stop)
        consumer.subscribe(list(kind_by_topic))
        uncommitted = 0

        def flush_and_commit() -> None:
            nonlocal uncommitted
            if writer.pending:
                progress.rows += writer.flush()
                progress.flushes += 1
                if after_flush is not None:
                    after_flush()
            progress.retries = writer.retries
            progress.rejected = writer.rejected
            progress.values_fitted = writer.values_fitted
            if uncommitted:
                try:
                    consumer.commit()
                except CommitFailedError as error:
                    # The group rebalanced: the new owner re-reads these messages, whose rows are
                    # already stored under the same keys, so they collapse on FINAL.
                    log.warning("offset commit failed after a rebalance: %s", error)
                else:
                    progress.committed += uncommitted
                uncommitted = 0
                if on_progress is not None:
                    on_progress(progress)

        while not stop.is_set():
            polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            for records in polled.values():
                for record in records:
                    kind = kind_by_topic[record.topic]
                    progress.messages += 1
                    uncommitted += 1
                    if record.value is None:
                        # A compaction tombstone deletes a key from the topic; the tables keep history.
                        progress.tombstones += 1
                        continue
                    source = (record.topic, record.partition, record.offset)
                    try:
                        derived = decode(kind, record.value)
                    except (ValidationError, ValueError, UnicodeDecodeError) as error:
                        log.error("undecodable message on %s[%d]@%d: %s", record.topic, record.partition,
                                  record.offset, type(error).__name__)
                        progress.undecodable += 1
                        writer.add_rows("deadletter", undecodable_rows(
                            record.topic, record.partition, record.offset, record.timestamp, error, zone), source)
                        continue
                    try:
                        table, rows = rows_for(kind, derived, zone)
                    except Exception as error:  # a mapping bug must not stop the sink: recorded, and past it
                        log.error("cannot map the message on %s[%d]@%d: %s", record.topic, record.partition,
                                  record.offset, type(error).__name__)
                        writer.add_reject(kind, error, source)
                        continue
                    writer.add_rows(table, rows, source)
            # A whole poll is buffered before any flush, so a commit never covers an unwritten row.
            if writer.due() or (uncommitted and not writer.pending):
                flush_and_commit()
        flush_and_commit()
        return progress
    finally:
        if consumer is not None:
            consumer.close(autocommit=False)
        client.close()
