"""Ingest agent: inbound bytes -> validate + pseudonymise (core) -> events | dead-letter.

A duplicated event_id passes at most once while it is remembered (the dedup window); the
correlation core is idempotent on event_id as well, so a duplicate beyond the window changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import faust

from models.derived import DeadLetter
from streams.app import Topics
from streams.core.ingest import Origin, ingest

log = logging.getLogger(__name__)

PRUNE_EVERY = 5000  # messages per partition between sweeps of the dedup table


def register(app: faust.App, topics: Topics, secret: bytes, dedup_window: timedelta) -> None:
    # event_id -> [source partition, first seen (epoch s), source offset]; the partition says which
    # changelog partition owns the entry, so a sweep only deletes its own partition's keys.
    seen = app.Table("ingest-seen-event-ids", default=None, key_type=str)
    since_sweep: dict[int, int] = {}

    def sweep(partition: int, now: float) -> None:
        cutoff = now - dedup_window.total_seconds()
        stale = [k for k, entry in seen.items() if entry[0] == partition and entry[1] < cutoff]
        for key in stale:
            del seen[key]

    @app.agent(topics.inbound, name="ingest")
    async def ingest_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            received_at = datetime.now(UTC)
            origin = Origin(message.topic, message.partition, message.offset, received_at)
            result = ingest(secret, bytes(event.value), origin)  # Fact | DeadLetter
            if isinstance(result, DeadLetter):
                log.info("rejected %s[%s]@%s: %d error(s)", message.topic, message.partition, message.offset,
                         len(result.errors))
                await topics.deadletter.send(key=event.key, value=result.model_dump_json().encode())
                continue
            first = seen.get(result.event_id)  # [partition, first seen, offset]
            if first is not None and first[2:] != [message.offset]:
                log.info("duplicate event_id %s ignored", result.event_id)
                continue
            # Not seen, or the same message redelivered after a crash (its send may have been lost):
            # send it; everything downstream ignores an event_id it already holds.
            now = received_at.timestamp()
            seen[result.event_id] = [message.partition, now, message.offset]
            # (child_key, Fact): the first identifier's pseudonymous key
            await topics.events.send(key=result.child_keys[0].encode(), value=result.model_dump_json().encode())
            since_sweep[message.partition] = since_sweep.get(message.partition, 0) + 1
            if since_sweep[message.partition] >= PRUNE_EVERY:
                since_sweep[message.partition] = 0
                sweep(message.partition, now)
