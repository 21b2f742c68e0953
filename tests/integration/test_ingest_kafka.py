"""Ingest on the real broker: good events arrive once on the events topic, pseudonymised; bad ones
are dead-lettered with their reason and original bytes; nothing else appears."""

from __future__ import annotations

import base64
import itertools
import json
import re
from datetime import UTC, datetime

import pytest

from models.events import ChildEvent, event_identifiers, parse_event
from sgi.publish import publish_messages
from simulator import CityConfig, simulate
from streams.topics import DEADLETTER, EVENTS, INBOUND
from tests.integration.support import log_tail, read_topics, running, worker_env

pytestmark = pytest.mark.integration


def raw_strings(event: object) -> set[str]:
    """Every raw identifier value (as sent and normalised) and full postcode in an event."""
    found: set[str] = set()
    for identifier in event_identifiers(event):  # type: ignore[arg-type]
        found |= {identifier.value, identifier.normalised}
    location = getattr(event, "location", None)
    if location is not None and location.postcode:
        found.add(location.postcode)
    return {s for s in found if len(s) >= 5}


def test_thousand_mixed_events_arrive_once_or_dead_lettered(fresh_topics, tmp_path):
    kafka_bootstrap = fresh_topics
    lines = list(itertools.islice(
        simulate(days=60, seed=7, start=datetime(2026, 1, 5, tzinfo=UTC), malformed_share=0.2,
                 config=CityConfig(scale=0.5)),
        1000,
    ))
    assert len(lines) == 1000
    parsed = [parse_event(line)[0] for line in lines]
    good = {str(e.event_id): e for e in parsed if e is not None}
    bad = [line for line, e in zip(lines, parsed, strict=True) if e is None]
    resent = 1000 - len(bad) - len(good)  # the simulator re-sends a few events, as partners do
    assert 100 < len(bad) < 300 and 0 <= resent < 20  # a real mix
    # The same events re-sent by a partner system must not pass twice.
    duplicates = [line for line, e in zip(lines, parsed, strict=True) if e is not None][:25]

    sent = publish_messages(lines + duplicates, kafka_bootstrap, INBOUND, progress=False)
    assert sent == 1025

    env = worker_env(kafka_bootstrap, tmp_path / "faust", app_id="sgi-test-ingest")
    log = tmp_path / "worker.log"
    with running(["worker"], env, log) as proc:
        records = read_topics(kafka_bootstrap, [EVENTS, DEADLETTER], until_count=len(good) + len(bad),
                              timeout=180, settle=5, proc=proc)
    events = [r for r in records if r.topic == EVENTS]
    dead = [r for r in records if r.topic == DEADLETTER]
    assert len(events) + len(dead) >= len(good) + len(bad), log_tail(log)

    event_ids = [json.loads(r.value)["event_id"] for r in events]
    assert sorted(event_ids) == sorted(good), "every good event exactly once, nothing else"

    raw = set().union(*(raw_strings(e) for e in good.values()))
    digits_only = {re.sub(r"\s", "", s) for s in raw}
    for record in events:
        text = record.key.decode() + record.value.decode()
        leaked = [s for s in raw | digits_only if s in text]
        assert not leaked, f"raw identifier in events topic: {leaked[:3]}"
        fact = json.loads(record.value)
        assert record.key.decode() == fact["child_keys"][0]
        assert re.fullmatch(r"[0-9a-f]{64}", record.key.decode())
        source = good[fact["event_id"]]
        if isinstance(source, ChildEvent) and source.child.birth_month:
            assert fact["birth_month"] == source.child.birth_month

    assert sorted(base64.b64decode(json.loads(r.value)["original"]) for r in dead) == sorted(bad)
    for record in dead:
        letter = json.loads(record.value)
        assert letter["errors"] and all(e["loc"] and e["msg"] for e in letter["errors"])
        assert letter["topic"] == INBOUND and letter["offset"] >= 0 and letter["partition"] >= 0
