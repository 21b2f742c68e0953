"""The sink survives any one record, on a real embedded ClickHouse (chDB) and a real Kafka broker:
values no column can hold, a row the store refuses, a backfill spanning 150 months.

chDB hosts one engine path per process: the module opens one client on one path and closes it at the end.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from models.derived import Alert, ChildSnapshot, DeadLetter, Fact, Place, PlaceLink, Record
from settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse import BatchWriter
from sinks.rows import COLUMNS, as_tuple, fit, rows_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
PLACE = Place(postcode_sector="CV1 2", ward_code="E05001219", ward_name="St Michael's", lat=52.408, lon=-1.51)


def extreme_records() -> list[tuple[str, Any]]:
    """Valid derived records carrying values the contract allows (or allowed) that no column could hold."""
    late = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-10)))
    return [
        ("events", Fact(event_id="far-future", event_type="da.incident", agency="police", child_keys=["k1"],
                        occurred_at=late, incident_ref="i", child_present=True, marac_referred=False,
                        encompass_notified_at=datetime(1, 1, 1, tzinfo=UTC), dash_score=300)),
        ("events", Fact(event_id="many-plans", event_type="cp_plan.started", agency="childrens_social_care",
                        child_keys=["k2"], occurred_at=NOW, recorded_at=datetime(9999, 1, 1, tzinfo=UTC),
                        encompass_notified_at=datetime(9999, 12, 31, tzinfo=UTC), previous_plans=70000)),
        ("deadletter", DeadLetter(errors=[{"loc": "<unknown field>", "msg": "Extra inputs are not permitted"}] * 70006,
                                  original="", original_bytes=5 * 2**32, topic="in", partition=0, offset=2**63,
                                  received_at=NOW)),
        ("child_state", ChildSnapshot(child_key="k1", episodes_30d=2**40, changed_at=NOW)),
        ("alerts", Alert(alert_id="a1", rule="r", subject_kind="child", subject="k1", status="open",
                         opened_at=datetime(1, 1, 1, tzinfo=UTC), evidence=[], summary="s", changed_at=NOW)),
    ]


def test_values_no_column_can_hold_are_stored_fitted_never_block(client: Client, database: str) -> None:
    writer = BatchWriter(client, database=database, sleep=lambda _: pytest.fail("nothing here is retryable"))
    for offset, (kind, record) in enumerate(extreme_records()):
        writer.add_rows(*rows_for(kind, record), source=("topic", 0, offset))
    assert writer.flush() == 2 + 101 + 1 + 1
    assert writer.rejected == 0 and writer.values_fitted > 0
    events = client.query(f"SELECT event_id, occurred_at, recorded_at, encompass_notified_at, dash_score,"
                          f" previous_plans FROM {database}.events ORDER BY event_id").result_rows
    assert events == [
        ("far-future", datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), None, None, None, None),
        ("many-plans", NOW, None, None, None, None),
    ]
    letters = client.query(f"SELECT count(), max(error_index), any(error_count), any(size_bytes), any(offset)"
                           f" FROM {database}.deadletter").result_rows
    assert letters == [(101, 100, 65535, 2**32 - 1, 2**63)]
    assert client.command(f"SELECT episodes_30d FROM {database}.child_state") == 2**32 - 1
    assert client.command(f"SELECT toYear(opened_at) FROM {database}.alerts") == 1900
    assert client.command(f"SELECT count() FROM {database}.sink_rejects") == 0


def test_a_row_the_store_refuses_is_rejected_without_its_values_and_the_rest_stored(
    client: Client, database: str
) -> None:
    """A constraint the server enforces (not retryable): the one row is isolated by halving the batch."""
    client.command(f"ALTER TABLE {database}.events ADD CONSTRAINT no_poison CHECK ifNull(system, '') != 'Jane Smith'")
    facts = [Fact(event_id=f"e{index:02d}", event_type="missing.ended", agency="police", child_keys=["k"],
                  occurred_at=NOW, system="Jane Smith" if index == 7 else "ok") for index in range(20)]
    writer = BatchWriter(client, database=database, sleep=lambda _: pytest.fail("not retryable"))
    for offset, fact in enumerate(facts):
        writer.add_rows(*rows_for("events", fact), source=("safeguarding.events.v1", 2, 500 + offset))
    assert writer.flush() == 20 and writer.pending == 0 and writer.rejected == 1
    stored = [row[0] for row in client.query(f"SELECT event_id FROM {database}.events ORDER BY event_id").result_rows]
    assert stored == [f.event_id for f in facts if f.event_id != "e07"]
    rejects = client.query(f"SELECT * FROM {database}.sink_rejects").result_rows
    assert len(rejects) == 1
    _, table, error_class, message, topic, partition, offset = rejects[0]
    assert (table, topic, partition, offset) == ("events", "safeguarding.events.v1", 2, 507)
    assert "DatabaseError" in error_class and ("VIOLATED_CONSTRAINT" in message or "469" in message), message
    assert "Jane" not in message and "e07" not in message


def _month_facts(months: int) -> tuple[list[Fact], list[PlaceLink]]:
    """One event and one place link in each of `months` consecutive months, from this month on (future
    months: nothing expires under the tables' TTL)."""
    first = NOW.replace(day=10, hour=12)
    facts, links = [], []
    for index in range(months):
        year, month = divmod(first.month - 1 + index, 12)
        moment = first.replace(year=first.year + year, month=month + 1)
        facts.append(Fact(event_id=f"m{index:03d}", event_type="missing.started", agency="police",
                          child_keys=[f"k{index}"], occurred_at=moment, place=PLACE, episode_ref=f"ep{index}"))
        links.append(PlaceLink(place_key="sector:CV1 2", place_kind="sector", place=PLACE, child_key=f"k{index}",
                               event_id=f"m{index:03d}", role="last_seen", occurred_at=moment))
    return facts, links


def test_a_backfill_spanning_150_months_is_written(client: Client, database: str) -> None:
    facts, links = _month_facts(150)
    # One insert of them all is what the writer must avoid: ClickHouse refuses over 100 partitions.
    with pytest.raises(DatabaseError, match="TOO_MANY_PARTS|partitions for single INSERT"):
        client.insert("events", [as_tuple("events", fit("events", rows_for("events", f)[1][0])[0]) for f in facts],
                      column_names=list(COLUMNS["events"]), database=database)
    writer = BatchWriter(client, database=database, batch_size=5000)
    for fact in facts:
        writer.add_rows(*rows_for("events", fact))
    for link in links:
        writer.add_rows(*rows_for("place_links", link))
    assert writer.flush() == 300 and writer.rejected == 0
    for table in ("events", "place_links"):
        assert client.command(f"SELECT count() FROM {database}.{table}") == 150
        assert client.command(f"SELECT uniqExact(toYYYYMM(occurred_at)) FROM {database}.{table}") == 150
    assert client.command(f"SELECT uniqExact(day) FROM {database}.places") == 150


def test_the_kafka_sink_commits_past_a_row_it_cannot_write(
    kafka_bootstrap: str, chdb_settings: ClickHouseSettings, client: Client, database: str
) -> None:
    """Through the real sink: the refused row is in sink_rejects with its Kafka place, every other message
    is stored, every offset committed, and the sink is still running."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    from sinks.kafka_sink import run_sink

    client.command(f"ALTER TABLE {database}.events ADD CONSTRAINT no_poison CHECK ifNull(system, '') != 'Jane Smith'")
    suffix = uuid.uuid4().hex[:8]
    topics = {f"faults-events-{suffix}": "events", f"faults-alerts-{suffix}": "alerts"}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics({t: {"num_partitions": 1, "replication_factor": 1} for t in topics},
                            wait_for_metadata=True)
    finally:
        admin.close()
    events_topic, alerts_topic = list(topics)
    messages: list[tuple[str, Record]] = [(events_topic, fact) for fact in (
        Fact(event_id=f"e{index}", event_type="missing.ended", agency="police", child_keys=["k"], occurred_at=NOW,
             system="Jane Smith" if index == 3 else "ok") for index in range(6))]
    messages += [(events_topic, record) for kind, record in extreme_records() if kind == "events"]
    messages += [(alerts_topic, Alert(alert_id="a1", rule="r", subject_kind="child", subject="k", status="open",
                                      opened_at=NOW, evidence=[], summary="s", changed_at=NOW))]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for topic, record in messages:
            producer.send(topic, value=record.model_dump_json().encode())
        producer.flush(timeout=30)
    finally:
        producer.close()

    stop = threading.Event()
    result: dict[str, Any] = {}

    def stop_when_done(progress: Any) -> None:
        if progress.committed >= len(messages):
            stop.set()

    def run() -> None:
        try:
            ch = chdb_settings.model_copy(update={"database": database})
            result["progress"] = run_sink(KafkaSettings(bootstrap=kafka_bootstrap), ch, stop, topics, max_wait=0.5,
                                          group_id=f"faults-{suffix}", on_progress=stop_when_done)
        except BaseException as error:  # surfaced by the assertion below
            result["error"] = error
            stop.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    stop.set()
    worker.join(timeout=30)
    assert "error" not in result, result.get("error")
    progress = result["progress"]
    assert progress.committed == len(messages) and progress.rejected == 1 and progress.values_fitted > 0
    stored = {row[0] for row in client.query(f"SELECT event_id FROM {database}.events").result_rows}
    assert stored == {"e0", "e1", "e2", "e4", "e5", "far-future", "many-plans"}
    assert client.command(f"SELECT count() FROM {database}.alerts") == 1
    rejects = client.query(f"SELECT `table`, topic, partition, offset FROM {database}.sink_rejects").result_rows
    assert rejects == [("events", events_topic, 0, 3)]

