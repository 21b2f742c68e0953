"""A ClickHouse store filled by the REAL pipeline core, without Kafka, for tests that read it back.

    simulate -> ingest (validate + pseudonymise) -> Engine.process at the event-time watermark
             -> Engine.advance(until) -> sinks.rows.rows_of -> BatchWriter -> a migrated database

The routing is the stream's: every record the Engine emits lands in the table of its topic. The
one thing the in-memory Engine keeps to itself is the child -> place traffic (PlaceLink), which the
Faust shell sends on the place-links topic and the sink stores; it is captured here on its way to
the place step so `place_links` (and the `places` rollup behind it) are filled as in production.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models.derived import DeadLetter, PlaceLink, Record
from simulator import CityConfig, simulate
from sinks.clickhouse import BatchWriter
from sinks.migrate import migrate
from sinks.rows import rows_of
from streams.core.clock import advance_watermark
from streams.core.config import RulesConfig, load_rules
from streams.core.engine import Engine
from streams.core.ingest import Origin, ingest
from streams.topics import INBOUND

DAY = timedelta(days=1)


class _LinkCapturingEngine(Engine):
    """The Engine, plus a copy of every PlaceLink it routes to a place (what the place-links topic carries)."""

    def __init__(self, config: RulesConfig) -> None:
        super().__init__(config)
        self.links: list[PlaceLink] = []

    def _route(self, output: Any, queue: Any, records: list[Any]) -> None:
        if isinstance(output, PlaceLink):
            self.links.append(output)
        super()._route(output, queue, records)

    def take_links(self) -> list[PlaceLink]:
        links, self.links = self.links, []
        return links


@dataclass(frozen=True)
class FillResult:
    """What went in: messages read, facts accepted, dead letters, and rows written per table."""

    start: datetime
    until: datetime
    messages: int
    facts: int
    dead_letters: int
    rows: dict[str, int]


def default_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days` ago, so the data ends about now and no row is past its table's TTL."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return datetime.combine(today - days * DAY, datetime.min.time(), tzinfo=UTC)


def fill_store(
    client: Any,
    database: str,
    days: int = 60,
    seed: int = 2015,
    scale: float = 0.05,
    *,
    start: datetime | None = None,
    until: datetime | None = None,
    malformed_share: float = 0.02,
    config: RulesConfig | None = None,
    secret: bytes | None = None,
) -> FillResult:
    """Simulate `days` of a city from `start` (default: `days` ago), run it through the pipeline core
    and write every derived row into `database` (migrated first). The clock is the event-time
    watermark while replaying, then moves to `until` (default: now). Returns the counts."""
    rules = config if config is not None else load_rules()
    key = secret if secret is not None else os.environ["SGI_PSEUDONYMISATION_KEY"].encode("utf-8")
    begin = start if start is not None else default_start(days)
    end = until if until is not None else datetime.now(UTC)
    migrate(client, database, time_zone=rules.timezone)
    writer = BatchWriter(client, database=database, batch_size=20_000, max_wait=3600.0)
    engine = _LinkCapturingEngine(rules)
    rows: Counter[str] = Counter()

    def write(records: Iterable[Record]) -> None:
        for record in records:
            table, table_rows = rows_of(record, rules.zone)
            rows[table] += len(table_rows)
            if writer.add_rows(table, table_rows):
                writer.flush()

    watermark: datetime | None = None
    messages = facts = dead_letters = 0
    city = CityConfig(scale=scale, zone=rules.zone)
    for offset, raw in enumerate(simulate(days, seed, begin, malformed_share, city)):
        messages += 1
        # A dead letter is stamped with the clock of the moment it was read, as the live stream would.
        received_at = watermark if watermark is not None else begin
        result = ingest(key, raw, Origin(topic=INBOUND, partition=0, offset=offset, received_at=received_at),
                        now=max(end, begin))
        if isinstance(result, DeadLetter):
            dead_letters += 1
            write([result])
            continue
        facts += 1
        watermark = advance_watermark(watermark, result.occurred_at)
        write([result])
        write(engine.process(result, watermark))
        write(engine.advance(watermark))
        write(engine.take_links())
    write(engine.advance(end))
    write(engine.take_links())
    writer.flush()
    return FillResult(begin, end, messages, facts, dead_letters, dict(rows))
