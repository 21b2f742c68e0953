"""ClickHouse storage on a real embedded engine (chDB): migrations, the batching writer, idempotence,
the read-only path, the `sql`/`db` commands, and the Kafka sink surviving a crash before its commit.

chDB hosts one engine path per process, so the module shares one client on one path and gives each
test a fresh database; the client is closed at the end so other modules can open their own path.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from models.derived import Alert, ChildSnapshot, DeadLetter, Episode, Fact, Place, PlaceLink, Record
from models.events import CseLevel
from settings import ClickHouseSettings, KafkaSettings, RetentionSettings
from sgi import db as db_cli
from sinks.clickhouse import BatchWriter
from sinks.migrate import (
    EARLIER_CHECKSUMS,
    READONLY_ROLE_SQL,
    SCHEMA_DIR,
    MigrationError,
    discover,
    migrate,
    render,
    split_statements,
)
from sinks.rows import COLUMNS, rows_for

pytestmark = pytest.mark.integration

# Every migration shipped, by version (a new one needs no edit here).
ALL_VERSIONS = [migration.version for migration in discover()]
TABLES = ("events", "episodes", "child_state", "alerts", "alert_changes", "place_links", "places", "deadletter")
# Recent times: rows older than their table's TTL would be dropped as they are written. 09:00 UTC keeps
# the sample's links (up to 3 h apart) on one London day.
NOW = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=2)
PLACE = Place(postcode_sector="CV1 2", ward_code="E05001219", ward_name="St Michael's", lat=52.408, lon=-1.51,
              premises_category="takeaway", premises_name="Chicken Spot")


def count(client: Client, database: str, table: str, final: bool = False) -> int:
    return int(client.command(f"SELECT count() FROM {database}.{table}{' FINAL' if final else ''}"))


def counts(client: Client, database: str) -> dict[str, int]:
    """Raw and FINAL row counts of every table."""
    out = {}
    for table in TABLES:
        out[table] = count(client, database, table)
        out[f"{table} FINAL"] = count(client, database, table, final=True)
    return out


def stop_merges(client: Client, database: str) -> None:
    """Raw counts then show every inserted copy: a background merge would hide a duplicate (or
    shrink a count between two readings), so idempotence is checked with merges stopped."""
    for table in TABLES:
        client.command(f"SYSTEM STOP MERGES {database}.{table}")


def places_rollup(client: Client, database: str) -> list[tuple[Any, ...]]:
    return client.query(
        f"SELECT place_key, day, length(groupUniqArrayArray(children)), length(groupUniqArrayArray(events)),"
        f" length(groupUniqArrayArray(children_at_cse_risk)) FROM {database}.places"
        " GROUP BY place_key, day ORDER BY place_key, day"
    ).result_rows


def sample_records() -> list[tuple[str, Record]]:
    """Two children, one place, an alert and an episode that each change once, one dead letter."""
    t0 = NOW
    facts = [
        Fact(event_id="e1", event_type="missing.started", occurred_at=t0, recorded_at=t0 + timedelta(minutes=5),
             agency="police", child_keys=["child-a"], birth_month="2012-05", place=PLACE, episode_ref="EP1",
             classification="missing", setting="care", police_risk="high"),
        Fact(event_id="e2", event_type="missing.ended", occurred_at=t0 + timedelta(hours=3), agency="police",
             child_keys=["child-a"], episode_ref="EP1"),
        Fact(event_id="e3", event_type="missing.started", occurred_at=t0 + timedelta(hours=1),
             agency="childrens_social_care", child_keys=["child-b", "child-b2"], place=PLACE, episode_ref="EPB"),
    ]
    links = [
        PlaceLink(place_key="premises:chicken", place_kind="premises", place=PLACE, child_key="child-a",
                  event_id="e1", role="last_seen", occurred_at=t0, child_cse_level=CseLevel.high),
        PlaceLink(place_key="premises:chicken", place_kind="premises", place=PLACE, child_key="child-b",
                  event_id="e3", role="last_seen", occurred_at=t0 + timedelta(hours=1)),
        PlaceLink(place_key="premises:chicken", place_kind="premises", place=PLACE, child_key="child-a",
                  event_id="e2", role="found", occurred_at=t0 + timedelta(hours=3), child_cse_level=CseLevel.high),
    ]
    alert = {"alert_id": "rhi_overdue:child-a:EP1", "rule": "rhi_overdue", "subject_kind": "child",
             "subject": "child-a", "opened_at": t0 + timedelta(hours=75), "evidence": ["e1", "e2"],
             "summary": "return interview overdue"}
    alerts = [
        Alert(**alert, status="open", changed_at=t0 + timedelta(hours=75)),
        Alert(**alert, status="resolved", resolved_at=t0 + timedelta(hours=80), changed_at=t0 + timedelta(hours=80)),
    ]
    episodes = [
        Episode(child_key="child-a", episode_ref="EP1", started_at=t0, police_risk="high", changed_at=t0),
        Episode(child_key="child-a", episode_ref="EP1", started_at=t0, ended_at=t0 + timedelta(hours=3),
                police_risk="high", changed_at=t0 + timedelta(hours=3)),
    ]
    snapshots = [ChildSnapshot(child_key="child-a", missing_now=True, changed_at=t0),
                 ChildSnapshot(child_key="child-a", missing_now=False, changed_at=t0 + timedelta(hours=3))]
    letter = DeadLetter(errors=[{"loc": "occurred_at", "msg": "Field required"},
                                {"loc": "source.agency", "msg": "Input should be 'police', ..."}],
                        original="eyJ4IjogMX0=", topic="safeguarding.inbound.v1", partition=0, offset=7,
                        received_at=t0, agency="polise", event_type="missing.started")
    return ([("events", f) for f in facts] + [("place_links", link) for link in links]
            + [("alerts", a) for a in alerts] + [("episodes", e) for e in episodes]
            + [("child_state", s) for s in snapshots] + [("deadletter", letter)])


EXPECTED_FINAL = {"events": 3, "place_links": 3, "places": 1, "alerts": 1, "alert_changes": 2, "episodes": 1,
                  "child_state": 1, "deadletter": 2}


def write_all(writer: BatchWriter, records: list[tuple[str, Record]]) -> int:
    for kind, record in records:
        writer.add_rows(*rows_for(kind, record))
    return writer.flush()


# --- migrations --------------------------------------------------------------------------------


def test_migrate_from_empty_then_rerun_is_a_no_op(client: Client) -> None:
    name = f"m_{uuid.uuid4().hex[:12]}"
    try:
        applied = migrate(client, name)
        assert applied == ALL_VERSIONS
        tables = {row[0] for row in client.query(f"SHOW TABLES FROM {name}").result_rows}
        assert set(TABLES) | {"schema_migrations", "places_mv", "alert_changes_mv", "sink_rejects"} <= tables
        assert migrate(client, name) == []
        assert count(client, name, "schema_migrations") == len(ALL_VERSIONS)
        # the retention periods reached the tables
        ttl = client.command(f"SELECT create_table_query FROM system.tables WHERE database = '{name}'"
                             " AND name = 'deadletter'")
        assert "toIntervalDay(30)" in str(ttl)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {name} SYNC")


def test_migrate_applies_only_new_files_and_refuses_an_edited_one(client: Client, tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    name = f"m_{uuid.uuid4().hex[:12]}"
    retention = RetentionSettings(events_days=90)
    try:
        assert migrate(client, name, retention, schema_dir=schema) == ALL_VERSIONS
        extra = ALL_VERSIONS[-1] + 1
        (schema / f"{extra:03d}_extra.sql").write_text(
            "CREATE TABLE IF NOT EXISTS {database}.extra (x String) ENGINE = Memory;\n"
            "-- a trailing comment; not a statement\n"
        )
        assert migrate(client, name, retention, schema_dir=schema) == [extra]
        assert migrate(client, name, retention, schema_dir=schema) == []
        (schema / "001_events.sql").write_text((schema / "001_events.sql").read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="001_events.sql changed"):
            migrate(client, name, retention, schema_dir=schema)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {name} SYNC")


def test_a_store_migrated_before_004_took_its_time_zone_stays_valid(client: Client) -> None:
    """Stores migrated when 004 said 'Europe/London' recorded that text's checksum: still accepted, nothing
    re-applied; a store created now with another zone gets that zone in its rollup."""
    name = f"m_{uuid.uuid4().hex[:12]}"
    other = f"m_{uuid.uuid4().hex[:12]}"
    try:
        assert migrate(client, name) == ALL_VERSIONS
        [earlier] = EARLIER_CHECKSUMS[4]
        client.insert("schema_migrations", [[4, "places", earlier]], column_names=["version", "name", "checksum"],
                      database=name)
        assert migrate(client, name) == []
        assert migrate(client, other, time_zone="America/New_York") == ALL_VERSIONS
        view = client.command(f"SELECT create_table_query FROM system.tables WHERE database = '{other}'"
                              " AND name = 'places_mv'")
        assert "America/New_York" in str(view) and "Europe/London" not in str(view)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {name} SYNC")
        client.command(f"DROP DATABASE IF EXISTS {other} SYNC")


def test_inserted_columns_are_the_tables_plain_columns(client: Client, database: str) -> None:
    for table, columns in COLUMNS.items():
        plain = [name for name, kind in client.query(
            f"SELECT name, default_kind FROM system.columns WHERE database = '{database}' AND table = '{table}'"
            " ORDER BY position").result_rows if kind == ""]
        assert plain == list(columns), table


# --- the writer --------------------------------------------------------------------------------


def test_writer_stores_exactly_the_expected_rows(client: Client, database: str) -> None:
    records = sample_records()
    writer = BatchWriter(client, database=database)
    assert write_all(writer, records) == 14

    assert {t: count(client, database, t, final=True) for t in TABLES} == EXPECTED_FINAL
    event = client.query(
        f"SELECT child_key, child_keys, agency, police_risk, ward_name, premises_category, age_at_event,"
        f" recording_lag_seconds, lateness_seconds >= 0, ingested_at > occurred_at"
        f" FROM {database}.events FINAL WHERE event_id = 'e1'").result_rows
    assert event == [("child-a", ["child-a"], "police", "high", "St Michael's", "takeaway",
                      event[0][6], 300, True, True)]
    alert = client.query(f"SELECT status, resolved_at FROM {database}.alerts FINAL").result_rows
    assert alert == [("resolved", NOW + timedelta(hours=80))]
    history = client.query(f"SELECT status FROM {database}.alert_changes FINAL ORDER BY changed_at").result_rows
    assert history == [("open",), ("resolved",)]
    assert client.query(f"SELECT ended_at FROM {database}.episodes FINAL").result_rows == [(NOW + timedelta(hours=3),)]
    assert client.query(f"SELECT missing_now FROM {database}.child_state FINAL").result_rows == [(False,)]
    letters = client.query(f"SELECT agency, error_loc, offset FROM {database}.deadletter FINAL"
                           " ORDER BY error_index").result_rows
    assert letters == [("polise", "occurred_at", 7), ("polise", "source.agency", 7)]
    place = client.query(f"SELECT place_kind, ward_code, lat, lon, children_count, event_count"
                         f" FROM {database}.places FINAL").result_rows
    assert place == [("premises", "E05001219", 52.408, -1.51, 2, 3)]
    assert [row[2:] for row in places_rollup(client, database)] == [(2, 3, 1)]


def test_the_same_batch_twice_changes_no_count(client: Client, database: str) -> None:
    stop_merges(client, database)
    records = sample_records()
    write_all(BatchWriter(client, database=database), records)
    before, rollup = counts(client, database), places_rollup(client, database)

    # The same batch again (a retry that had landed): its token matches, ClickHouse drops it.
    write_all(BatchWriter(client, database=database), records)
    assert counts(client, database) == before
    assert places_rollup(client, database) == rollup

    # The same records in other batches (a re-read after a crash): new tokens, rows land again,
    # but FINAL and the places rollup see each record once.
    for kind, record in reversed(records):
        write_all(BatchWriter(client, database=database), [(kind, record)])
    again = counts(client, database)
    assert {t: again[f"{t} FINAL"] for t in TABLES} == EXPECTED_FINAL
    assert places_rollup(client, database) == rollup


class FlakyClient:
    """Wraps the real client; its inserts fail `failures` times first. With `land_first`, a failing
    insert is written before it raises, like a timeout after the server committed the block."""

    def __init__(self, inner: Client, failures: int, land_first: bool = False) -> None:
        self.inner, self.failures, self.land_first, self.calls = inner, failures, land_first, 0

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            if self.land_first:
                self.inner.insert(*args, **kwargs)
            raise OperationalError("connection reset by peer")
        return self.inner.insert(*args, **kwargs)


@pytest.mark.parametrize("land_first", [False, True], ids=["lost", "landed"])
def test_writer_retries_a_failing_insert_without_losing_or_duplicating(
    client: Client, database: str, land_first: bool
) -> None:
    stop_merges(client, database)
    records = sample_records()
    flaky = FlakyClient(client, failures=2, land_first=land_first)
    sleeps: list[float] = []
    writer = BatchWriter(flaky, database=database, sleep=sleeps.append, backoff=0.1)  # type: ignore[arg-type]
    assert write_all(writer, records) == 14
    assert writer.retries == 2 and sleeps == [0.1, 0.2]
    assert writer.pending == 0
    assert {t: count(client, database, t, final=True) for t in TABLES} == EXPECTED_FINAL
    # Raw counts too: the landed copies were dropped by their deduplication token. (Two versions of
    # one key in one block are already collapsed on insert: optimize_on_insert.)
    assert {t: count(client, database, t) for t in TABLES} == EXPECTED_FINAL


def test_writer_gives_up_after_bounded_attempts_and_keeps_the_batch(client: Client, database: str) -> None:
    """The store down: retries exhausted, and the rejects cannot be written either, so the flush raises
    and keeps every row (nothing is committed past them)."""
    flaky = FlakyClient(client, failures=100)
    writer = BatchWriter(flaky, database=database, max_attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    for kind, record in sample_records():
        writer.add_rows(*rows_for(kind, record))
    with pytest.raises(OperationalError):
        writer.flush()
    assert flaky.calls == 3 + 3 and writer.pending == 14  # the batch, then its rejects, 3 attempts each
    flaky.failures = 0
    assert writer.flush() == 14
    assert {t: count(client, database, t, final=True) for t in TABLES} == EXPECTED_FINAL
    assert count(client, database, "sink_rejects") == 0


# --- read-only access --------------------------------------------------------------------------


def test_readonly_queries_select_but_cannot_insert(client: Client, chdb_settings: ClickHouseSettings,
                                                   database: str) -> None:
    stop_merges(client, database)
    write_all(BatchWriter(client, database=database), sample_records())
    _, [row] = rows_for("alerts", sample_records()[6][1])
    values = [list({**row, "alert_id": "another"}.values())]
    columns = list(COLUMNS["alerts"])

    ro = {"readonly": 1}
    assert client.query(f"SELECT count() FROM {database}.alerts FINAL", settings=ro).result_rows == [(1,)]
    with pytest.raises(DatabaseError, match="READONLY"):
        client.insert("alerts", values, column_names=columns, database=database, settings=ro)
    assert count(client, database, "alerts") == 1

    # A session like the grafana_reader profile (readonly = 2): SELECT, and per-query settings such as
    # max_execution_time, but no writes and no DDL.
    reader = clickhouse_connect.get_client(interface="chdb", path=str(chdb_settings.path), settings={"readonly": 2})
    try:
        assert reader.query(f"SELECT count() FROM {database}.events FINAL",
                            settings={"max_execution_time": 5}).result_rows == [(3,)]
        with pytest.raises(DatabaseError, match="READONLY"):
            reader.insert("alerts", values, column_names=columns, database=database)
        with pytest.raises(DatabaseError, match="READONLY"):
            reader.command(f"DROP TABLE {database}.alerts")
    finally:
        reader.close()
    assert count(client, database, "alerts") == 1
    # The writer's own client is not left read-only by any of this.
    client.insert("alerts", values, column_names=columns, database=database)
    assert count(client, database, "alerts") == 2


def test_readonly_role_sql_parses_but_needs_a_server(client: Client) -> None:
    statements = split_statements(render(READONLY_ROLE_SQL.read_text(),
                                         {"database": "safeguarding", "password": "'s3cret;''x'"}))
    assert len(statements) == 6
    for statement in statements:
        client.query(f"EXPLAIN AST {statement}")  # valid ClickHouse syntax
    with pytest.raises(DatabaseError, match="ACCESS_DENIED|Not enough privileges"):
        client.command("CREATE USER IF NOT EXISTS grafana_reader_probe IDENTIFIED BY 'x'")


# --- the commands ------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sgi")
    db_cli.add_parser(top.add_subparsers(dest="command", required=True))
    return top


def use_store(monkeypatch: pytest.MonkeyPatch, settings: ClickHouseSettings, database: str) -> None:
    monkeypatch.setenv("SGI_CLICKHOUSE_MODE", "chdb")
    monkeypatch.setenv("SGI_CLICKHOUSE_PATH", str(settings.path))
    monkeypatch.setenv("SGI_CLICKHOUSE_DATABASE", database)


def test_sql_prints_table_json_and_csv(client: Client, database: str) -> None:
    write_all(BatchWriter(client, database=database), sample_records())
    query = f"SELECT event_id, agency, dash_score, child_keys FROM {database}.events FINAL ORDER BY event_id"
    out = io.StringIO()
    db_cli.run_sql(client, query, "table", max_width=12, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["event_id", "agency", "dash_score", "child_keys"]
    assert lines == [
        "event_id  agency        dash_score  child_keys",
        "--------  ------------  ----------  ------------",
        'e1        police              NULL  ["child-a"]',
        'e2        police              NULL  ["child-a"]',
        'e3        childrens_s…        NULL  ["child-b",…',
        "(3 rows)",
    ]

    out = io.StringIO()
    db_cli.run_sql(client, query, "json", out=out)
    assert json.loads(out.getvalue())[2] == {"event_id": "e3", "agency": "childrens_social_care", "dash_score": None,
                                            "child_keys": ["child-b", "child-b2"]}
    out = io.StringIO()
    db_cli.run_sql(client, query, "csv", out=out)
    assert out.getvalue().splitlines()[:2] == ["event_id,agency,dash_score,child_keys", 'e1,police,,"[""child-a""]"']


def test_sql_command_errors_are_one_clear_line(chdb_settings: ClickHouseSettings, database: str,
                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    use_store(monkeypatch, chdb_settings, database)
    args = parser().parse_args(["sql", "SELEC count() FROM events"])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Code: 62.") and "SYNTAX_ERROR" in err and "Traceback" not in err

    args = parser().parse_args(["sql", "DROP TABLE events"])
    assert args.func(args) == 1
    assert "--write" in capsys.readouterr().err

    args = parser().parse_args(["sql", "SELECT count() AS n FROM events FINAL", "--format", "json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 0}]


def test_db_migrate_command(chdb_settings: ClickHouseSettings, client: Client, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    name = f"m_{uuid.uuid4().hex[:12]}"
    use_store(monkeypatch, chdb_settings, name)
    try:
        args = parser().parse_args(["db", "migrate"])
        assert args.func(args) == 0
        assert capsys.readouterr().out.splitlines()[0] == f"{name}: applied 001_events"
        assert args.func(args) == 0
        assert capsys.readouterr().out == f"{name}: up to date ({len(ALL_VERSIONS)} migrations)\n"
    finally:
        client.command(f"DROP DATABASE IF EXISTS {name} SYNC")


# --- the Kafka sink: a crash between insert and commit -----------------------------------------


class Crash(RuntimeError):
    pass


def test_sink_crash_between_insert_and_commit_then_restart_gives_no_duplicates(
    kafka_bootstrap: str, chdb_settings: ClickHouseSettings, client: Client
) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    from sinks.kafka_sink import run_sink

    suffix = uuid.uuid4().hex[:8]
    kinds = ("events", "place_links", "alerts", "episodes", "child_state", "deadletter")
    topics = {f"sink-test-{kind}-{suffix}": kind for kind in kinds}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics({t: {"num_partitions": 2, "replication_factor": 1} for t in topics},
                            wait_for_metadata=True)
    finally:
        admin.close()
    topic_of = {kind: topic for topic, kind in topics.items()}
    records = sample_records()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for kind, record in records:
            producer.send(topic_of[kind], value=record.model_dump_json().encode())
        producer.send(topic_of["alerts"], value=b'{"not": "an alert"}')  # counted, never blocks the sink
        producer.flush(timeout=30)
    finally:
        producer.close()
    total = len(records) + 1

    name = f"k_{uuid.uuid4().hex[:12]}"
    ch = chdb_settings.model_copy(update={"database": name})
    kafka = KafkaSettings(bootstrap=kafka_bootstrap)
    group = f"sink-test-{suffix}"

    def crash() -> None:
        raise Crash("killed after the insert, before the commit")

    try:
        give_up = threading.Event()
        timer = threading.Timer(60, give_up.set)  # never hang: a stopped sink flushes too, and crashes
        timer.start()
        try:
            with pytest.raises(Crash):
                run_sink(kafka, ch, give_up, topics, max_wait=0.5, group_id=group, after_flush=crash)
        finally:
            timer.cancel()
        assert sum(count(client, name, t) for t in TABLES) > 0  # the insert landed, its offsets never committed

        stop = threading.Event()
        result: dict[str, Any] = {}

        def stop_when_done(progress: Any) -> None:
            if progress.committed >= total:
                stop.set()

        def run() -> None:
            try:
                result["progress"] = run_sink(kafka, ch, stop, topics, max_wait=0.5, group_id=group,
                                              on_progress=stop_when_done)
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
        assert progress.messages == total and progress.committed == total and progress.undecodable == 1

        finals = {t: count(client, name, t, final=True) for t in TABLES}
        decode_errors = client.query(
            f"SELECT topic, offset, error_count, count() FROM {name}.deadletter FINAL"
            " WHERE error_loc = 'sink.decode' GROUP BY ALL").result_rows
        assert [topic for topic, _, _, _ in decode_errors] == [topic_of["alerts"]]  # one message
        assert decode_errors[0][2] == decode_errors[0][3]  # one row per reason, all of them
        assert finals == {**EXPECTED_FINAL, "deadletter": EXPECTED_FINAL["deadletter"] + decode_errors[0][3]}
        assert [row[2:] for row in places_rollup(client, name)] == [(2, 3, 1)]
    finally:
        client.command(f"DROP DATABASE IF EXISTS {name} SYNC")
