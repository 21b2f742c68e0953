"""Ingest agent: inbound bytes -> validate + pseudonymise (core) -> events | dead-letter.

The core decides everything (streams.core.ingest: `ingest`, and `admit` for duplicates); the agent
reads, remembers what `admit` says in a table, and sends. A duplicated event_id passes at most once
while it is remembered (the dedup window); the correlation core is idempotent on event_id as well, so
a duplicate beyond the window changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from models.derived import DeadLetter
from streams.app import Topics
from streams.core.ingest import Origin, Seen, admit, expired, ingest

log = logging.getLogger(__name__)

PRUNE_EVERY = 5000  # messages per partition between sweeps of the dedup table


# (topic, key, value) -> sent; the default sends to the topic.
Send = Callable[[faust.TopicT, bytes | None, bytes], Awaitable[None]]


def wall_clock() -> datetime:
    return datetime.now(UTC)


def register(app: faust.App, topics: Topics, secret: bytes, dedup_window: timedelta, *,
             send: Send | None = None, clock: Callable[[], datetime] = wall_clock) -> None:
    """Registers the ingest agent; `send` and `clock` replace the topics and the wall clock in tests."""
    # event_id -> Seen.to_table(): {"partition", "first_seen", "offset"}
    seen = app.Table("ingest-seen-event-ids", default=None, key_type=str)
    since_sweep: dict[int, int] = {}

    async def to_topic(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
        await topic.send(key=key, value=value)

    deliver = send if send is not None else to_topic

    def sweep(partition: int, now: datetime) -> None:
        stale = []
        for event_id, value in seen.items():
            entry = Seen.from_table(value)
            if entry.partition == partition and expired(entry, now, dedup_window):
                stale.append(event_id)
        for event_id in stale:
            del seen[event_id]

    @app.agent(topics.inbound, name="ingest")
    async def ingest_agent(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            message = event.message
            origin = Origin(message.topic, message.partition, message.offset, clock())
            result = ingest(secret, bytes(event.value), origin)  # Fact | DeadLetter
            if isinstance(result, DeadLetter):
                log.info("rejected %s[%s]@%s: %d error(s)", message.topic, message.partition, message.offset,
                         len(result.errors))
                await deliver(topics.deadletter, event.key, result.model_dump_json().encode())
                continue
            stored = seen.get(result.event_id)
            remember = admit(Seen.from_table(stored) if stored is not None else None, origin)
            if remember is None:
                log.info("duplicate event_id ignored at %s[%s]@%s", message.topic, message.partition, message.offset)
                continue
            seen[result.event_id] = remember.to_table()
            # (child_key, Fact): the first identifier's pseudonymous key
            await deliver(topics.events, result.child_keys[0].encode(), result.model_dump_json().encode())
            since_sweep[message.partition] = since_sweep.get(message.partition, 0) + 1
            if since_sweep[message.partition] >= PRUNE_EVERY:
                since_sweep[message.partition] = 0
                sweep(message.partition, origin.received_at)
