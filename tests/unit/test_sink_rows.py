"""The sink's pure parts: record -> rows, the column contract with the migrations, statement
splitting, deduplication tokens and the writer's flush policy (with a fake client)."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

from models.derived import Alert, ChildSnapshot, DeadLetter, Episode, Fact, Place, PlaceLink
from models.events import Agency, CseLevel, PoliceRisk, PremisesCategory
from sinks.clickhouse import REJECT_COLUMNS, BatchWriter, dedup_token, is_retryable, scrubbed_message
from sinks.migrate import (
    EARLIER_CHECKSUMS,
    SCHEMA_DIR,
    MigrationError,
    check_time_zone,
    discover,
    render,
    split_statements,
)
from sinks.rows import (
    COLUMNS,
    KIND_BY_TOPIC,
    TABLE_BY_MODEL,
    age_in_years,
    as_tuple,
    decode,
    fit,
    kind_of,
    partition_of,
    rows_for,
    rows_of,
    table_of,
)
from streams.core.config import load_rules
from streams.topics import ALERTS, CHILD_STATES, DEADLETTER, EPISODES, EVENTS, PLACE_LINKS

BST = timezone(timedelta(hours=1))
AT = datetime(2026, 3, 30, 14, 5, 7, 123456, tzinfo=BST)
RAW_MESSAGE = b'{"child": {"identifiers": [{"scheme": "nhs_number", "value": "943 476 5919"}]}}'
PLACE = Place(postcode_sector="CV1 2", ward_code="E05001219", lat=52.408, lon=-1.51,
              premises_category=PremisesCategory.takeaway, premises_name="Chicken Spot")


def fact(**overrides: object) -> Fact:
    fields: dict[str, object] = {
        "event_id": "6f1c1b5e-0000-4000-8000-000000000001",
        "event_type": "missing.started",
        "occurred_at": AT,
        "recorded_at": AT + timedelta(hours=2),
        "agency": Agency.police,
        "child_keys": ["key-a", "key-b"],
        "birth_month": "2012-05",
        "place": PLACE,
        "episode_ref": "EP1",
        "police_risk": PoliceRisk.high,
        "named_places": [PLACE, PLACE],
    }
    fields.update(overrides)
    return Fact.model_validate(fields)


def dead_letter(errors: list[dict[str, str]] | None = None) -> DeadLetter:
    return DeadLetter(
        errors=[{"loc": "child.identifiers.0.value", "msg": "nhs_number fails its modulus-11 check digit"},
                {"loc": "occurred_at", "msg": "Field required"}] if errors is None else errors,
        original=base64.b64encode(RAW_MESSAGE).decode("ascii"),
        topic="safeguarding.inbound.v1",
        partition=2,
        offset=41,
        received_at=AT,
        agency="police",
        event_type="missing.started",
    )


RECORDS = {
    "events": fact(),
    "alerts": Alert(alert_id="A1", rule="police_high_risk", subject_kind="child", subject="key-a", status="open",
                    opened_at=AT, evidence=["e1"], summary="graded high", changed_at=AT),
    "episodes": Episode(child_key="key-a", episode_ref="EP1", started_at=AT, police_risk=PoliceRisk.high,
                        data_quality=["end_without_start"], changed_at=AT),
    "child_state": ChildSnapshot(child_key="key-a", agencies=["police"], cse_level=CseLevel.medium, changed_at=AT),
    "place_links": PlaceLink(place_key="premises:x", place_kind="premises", place=PLACE, child_key="key-a",
                             event_id="e1", role="last_seen", occurred_at=AT, child_cse_level=CseLevel.high),
    "deadletter": dead_letter(),
}
TOPIC_OF = {"events": EVENTS, "alerts": ALERTS, "episodes": EPISODES, "child_state": CHILD_STATES,
            "place_links": PLACE_LINKS, "deadletter": DEADLETTER}


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_every_row_has_exactly_the_table_columns(kind: str) -> None:
    table, rows = rows_for(kind, RECORDS[kind])
    assert table == kind
    assert rows
    for row in rows:
        assert list(row) == list(COLUMNS[table])
        assert len(as_tuple(table, row)) == len(COLUMNS[table])


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_topic_and_kind_give_the_same_rows(kind: str) -> None:
    assert rows_for(TOPIC_OF[kind], RECORDS[kind]) == rows_for(kind, RECORDS[kind])
    assert KIND_BY_TOPIC[TOPIC_OF[kind]] == kind


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_values_are_plain_and_datetimes_utc(kind: str) -> None:
    _, rows = rows_for(kind, RECORDS[kind])
    for row in rows:
        for value in row.values():
            assert not isinstance(value, Enum)
            if isinstance(value, datetime):
                assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_decode_reads_the_model_json(kind: str) -> None:
    record = RECORDS[kind]
    assert decode(TOPIC_OF[kind], record.model_dump_json().encode()) == record


def test_event_row() -> None:
    _, [row] = rows_for(EVENTS, fact())
    assert row["child_key"] == "key-a"  # no canonical key on a Fact yet: the first (topic) key
    assert row["child_keys"] == ["key-a", "key-b"]
    assert row["occurred_at"] == datetime(2026, 3, 30, 13, 5, 7, 123456, tzinfo=UTC)
    assert row["agency"] == "police" and type(row["agency"]) is str
    assert row["police_risk"] == "high"
    assert row["premises_category"] == "takeaway"
    assert row["postcode_sector"] == "CV1 2"
    assert row["named_place_count"] == 2
    assert row["age_at_event"] == 13
    assert row["cse_level"] is None and row["disclosures"] == []


def test_event_without_place_or_birth_month() -> None:
    _, [row] = rows_for(EVENTS, fact(place=None, birth_month=None, recorded_at=None))
    assert row["postcode_sector"] is None and row["lat"] is None and row["premises_name"] is None
    assert row["age_at_event"] is None and row["recorded_at"] is None


@pytest.mark.parametrize(
    ("birth_month", "moment", "age"),
    [
        ("2012-05", datetime(2026, 5, 1, tzinfo=UTC), 14),
        ("2012-05", datetime(2026, 4, 30, 22, tzinfo=UTC), 13),  # still April in London
        ("2012-05", datetime(2026, 4, 30, 23, 30, tzinfo=UTC), 14),  # 1 May 00:30 BST
        ("2026-06", datetime(2026, 3, 1, tzinfo=UTC), None),
        ("bad", datetime(2026, 3, 1, tzinfo=UTC), None),
    ],
)
def test_age_in_years(birth_month: str, moment: datetime, age: int | None) -> None:
    assert age_in_years(birth_month, moment, ZoneInfo("Europe/London")) == age


def test_deadletter_one_row_per_error_and_never_the_original() -> None:
    letter = dead_letter()
    table, rows = rows_for(DEADLETTER, letter)
    assert table == "deadletter"
    assert [(r["error_index"], r["error_loc"]) for r in rows] == [(0, "child.identifiers.0.value"), (1, "occurred_at")]
    assert all(r["error_count"] == 2 for r in rows)
    assert all((r["topic"], r["partition"], r["offset"]) == ("safeguarding.inbound.v1", 2, 41) for r in rows)
    assert rows[0]["size_bytes"] == len(RAW_MESSAGE)
    assert rows[0]["day"] == date(2026, 3, 30)
    assert rows[0]["hour"] == datetime(2026, 3, 30, 13, tzinfo=UTC)
    for row in rows:
        assert "original" not in row
        flat = repr(row)
        assert letter.original not in flat
        assert "943 476 5919" not in flat and "9434765919" not in flat


def test_deadletter_without_errors_still_counts_once() -> None:
    _, rows = rows_for(DEADLETTER, dead_letter(errors=[]))
    assert len(rows) == 1 and rows[0]["error_count"] == 1


def test_deadletter_error_text_is_capped() -> None:
    _, [row] = rows_for(DEADLETTER, dead_letter(errors=[{"loc": "x", "msg": "m" * 5000}]))
    assert len(row["error_msg"]) == 300


def test_wrong_record_or_unknown_topic_is_refused() -> None:
    with pytest.raises(TypeError):
        rows_for(ALERTS, fact())
    with pytest.raises(KeyError):
        kind_of("safeguarding.inbound.v1")


# --- the column contract with the migrations ---------------------------------------------------

CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS \{database\}\.(\w+)\s*\((.*)\)\s*ENGINE", re.DOTALL)
COLUMN_LINE = re.compile(r"^\s*(\w+)\s+(.+?),?\s*$")
ALTER_TABLE = re.compile(r"ALTER TABLE \{database\}\.(\w+)\s")
ADD_COLUMN = re.compile(r"ADD COLUMN IF NOT EXISTS (\w+)\s+([^,\n]+)")


def schema_columns() -> dict[str, tuple[list[str], list[str]]]:
    """table -> (columns the sink inserts, columns ClickHouse fills), read from the .sql files."""
    tables: dict[str, tuple[list[str], list[str]]] = {}
    for migration in discover():
        for statement in split_statements(migration.text):
            altered = ALTER_TABLE.search(statement)
            if altered is not None:  # a later migration's columns come after the table's first ones
                for name, kind in ADD_COLUMN.findall(statement):
                    filled_by_server = re.search(r"\b(DEFAULT|ALIAS|MATERIALIZED)\b", kind)
                    tables[altered.group(1)][1 if filled_by_server else 0].append(name)
                continue
            match = CREATE_TABLE.search(statement)
            if match is None:
                continue
            inserted: list[str] = []
            filled: list[str] = []
            for line in match.group(2).splitlines():
                line = line.split("--", 1)[0]
                column = COLUMN_LINE.match(line)
                if column is None or column.group(1) == "INDEX":
                    continue
                filled_by_server = re.search(r"\b(DEFAULT|ALIAS|MATERIALIZED)\b", column.group(2))
                (filled if filled_by_server else inserted).append(column.group(1))
            tables[match.group(1)] = (inserted, filled)
    return tables


def test_row_columns_match_the_migrations() -> None:
    tables = schema_columns()
    for table, columns in COLUMNS.items():
        inserted, _ = tables[table]
        assert tuple(inserted) == columns, table
    assert tables["events"][1] == ["ingested_at", "recording_lag_seconds", "lateness_seconds"]
    assert {"alert_changes", "places", "schema_migrations"} - set(tables) == {"schema_migrations"}


def test_migrations_are_numbered_and_render() -> None:
    migrations = discover()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    values = {"database": "db", "events_ttl_days": "730", "alerts_ttl_days": "2190", "deadletter_ttl_days": "30",
              "time_zone": "Europe/London"}
    for migration in migrations:
        rendered = render(migration.text, values)
        assert "{" not in re.sub(r"--[^\n]*", "", rendered), migration.path.name
    assert (SCHEMA_DIR / "readonly_role.sql").exists()
    assert "readonly_role" not in [m.name for m in migrations]


def test_places_migration_takes_the_configured_time_zone_and_stays_valid_for_existing_stores() -> None:
    """004 said 'Europe/London' before it took {time_zone}: for the default zone it renders exactly the
    text that stores migrated earlier recorded, so their checksum is still accepted."""
    [places] = [m for m in discover() if m.version == 4]
    assert "Europe/London" not in places.text and places.text.count("{time_zone}") == 2
    earlier_text = places.text.replace("{time_zone}", load_rules().timezone)
    assert hashlib.sha256(earlier_text.encode("utf-8")).hexdigest() in EARLIER_CHECKSUMS[4]
    assert places.checksum not in EARLIER_CHECKSUMS[4]
    values = {"database": "db", "events_ttl_days": "1", "alerts_ttl_days": "1", "deadletter_ttl_days": "1"}
    assert "toDate(occurred_at, 'America/New_York')" in render(places.text, {**values, "time_zone": "America/New_York"})
    with pytest.raises(MigrationError, match="IANA"):
        check_time_zone("Europe/London'); DROP TABLE x; --")


def test_split_statements_respects_strings_and_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE a (x String DEFAULT ';') ENGINE = Memory;
    /* block; comment */
    SELECT 'it''s; fine', "q;uoted", `b;t`
    ;
    -- only a comment;
    """
    statements = split_statements(sql)
    assert len(statements) == 2
    assert statements[0].endswith("CREATE TABLE a (x String DEFAULT ';') ENGINE = Memory")
    assert statements[1].startswith("/* block; comment */")
    assert statements[1].endswith("`b;t`")


def test_render_refuses_unknown_placeholders() -> None:
    with pytest.raises(RuntimeError, match="unknown placeholder"):
        render("TTL x + INTERVAL {nope} DAY", {"database": "db"})
    assert render("SELECT {p:String}", {}) == "SELECT {p:String}"


# --- deduplication tokens and the flush policy -------------------------------------------------


def test_dedup_token_is_deterministic_per_table_and_content() -> None:
    rows = [["a", AT, None, ["x"]], ["b", AT, 1.5, []]]
    assert dedup_token("events", rows) == dedup_token("events", [list(r) for r in rows])
    assert dedup_token("events", rows) != dedup_token("alerts", rows)
    assert dedup_token("events", rows) != dedup_token("events", rows[:1])


class FakeClient:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.inserts: list[tuple[str, list[list[object]], dict[str, str] | None]] = []

    def insert(self, table: str, rows: list[list[object]], column_names: list[str], database: str | None = None,
               settings: dict[str, str] | None = None) -> None:
        assert column_names == list(COLUMNS.get(table, REJECT_COLUMNS))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("server went away")
        self.inserts.append((table, list(rows), settings))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_flush_is_due_on_size_or_age_and_writes_every_table() -> None:
    client, clock = FakeClient(), FakeClock()
    writer = BatchWriter(client, batch_size=3, max_wait=1.0, clock=clock)  # type: ignore[arg-type]
    _, alert_rows = rows_for(ALERTS, RECORDS["alerts"])
    _, letter_rows = rows_for(DEADLETTER, dead_letter())
    writer.add_rows("alerts", alert_rows)
    writer.add_rows("deadletter", letter_rows)
    assert not writer.due() and writer.flush_if_due() == 0
    clock.now += 1.0
    assert writer.due()
    assert writer.flush_if_due() == 3
    assert [t for t, _, _ in client.inserts] == ["alerts", "deadletter"]
    assert writer.pending == 0 and not writer.due()
    writer.add_rows("deadletter", letter_rows * 2)  # 4 rows >= batch_size 3
    assert writer.due()
    assert writer.flush() == 4
    assert [len(rows) for t, rows, _ in client.inserts[2:]] == [3, 1]  # chunks of batch_size
    assert all(s and s["insert_deduplication_token"].startswith(t + ":") for t, _, s in client.inserts)


def test_auto_flush_writes_when_a_table_fills() -> None:
    client = FakeClient()
    writer = BatchWriter(client, batch_size=2, auto_flush=True)  # type: ignore[arg-type]
    _, rows = rows_for(DEADLETTER, dead_letter())
    assert writer.add("deadletter", rows[0]) is False and not client.inserts
    assert writer.add("deadletter", rows[1]) is False
    assert [len(r) for _, r, _ in client.inserts] == [2] and writer.pending == 0


def test_flush_retries_with_backoff_then_gives_up_keeping_the_rows() -> None:
    sleeps: list[float] = []
    client = FakeClient(failures=2)
    writer = BatchWriter(client, max_attempts=3, backoff=0.5, sleep=sleeps.append)  # type: ignore[arg-type]
    writer.add_rows(*rows_for(ALERTS, RECORDS["alerts"]))
    assert writer.flush() == 1
    assert sleeps == [0.5, 1.0] and writer.retries == 2 and len(client.inserts) == 1

    client = FakeClient(failures=10)
    writer = BatchWriter(client, max_attempts=3, backoff=0.5, sleep=sleeps.append)  # type: ignore[arg-type]
    writer.add_rows(*rows_for(ALERTS, RECORDS["alerts"]))
    with pytest.raises(ConnectionError):
        writer.flush()
    assert writer.pending == 1  # never lost: the next flush tries again
    client.failures = 0
    assert writer.flush() == 1 and writer.pending == 0


def test_the_table_of_a_record_follows_from_its_type() -> None:
    """sinks.rows is the one home of record type -> table (the sink, the test store and the benchmark use it)."""
    for table, record in RECORDS.items():
        assert table_of(record) == table
        assert rows_of(record) == rows_for(TOPIC_OF[table], record)
    assert set(TABLE_BY_MODEL.values()) == set(COLUMNS)
    with pytest.raises(KeyError, match="no table for a Place"):
        table_of(PLACE)


# --- surviving any one record ----------------------------------------------------------------------


def test_values_no_column_can_hold_are_fitted_and_named() -> None:
    """A datetime the contract allows but DateTime64(3) cannot hold: NULL in a Nullable column, the range's
    end in a required one; an integer beyond its type likewise. Year 9999 at -10:00 is past Python's UTC."""
    fact = Fact(event_id="e", event_type="da.incident", agency="police", child_keys=["k"],
                occurred_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-10))),
                recorded_at=datetime(9999, 12, 31, tzinfo=UTC), encompass_notified_at=datetime(1, 1, 1, tzinfo=UTC),
                dash_score=300, previous_plans=70000)
    table, rows = rows_for(EVENTS, fact)
    fitted, changed = fit(table, rows[0])
    assert sorted(changed) == ["dash_score", "encompass_notified_at", "occurred_at", "previous_plans", "recorded_at"]
    assert fitted["encompass_notified_at"] is None and fitted["recorded_at"] is None
    assert fitted["dash_score"] is None and fitted["previous_plans"] is None
    assert fitted["occurred_at"] == datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    in_range = {**rows[0], "occurred_at": datetime(2026, 1, 1, tzinfo=UTC), "recorded_at": None,
                "encompass_notified_at": datetime(2299, 12, 31, tzinfo=UTC), "dash_score": 24, "previous_plans": 50}
    assert fit(table, in_range) == (in_range, [])
    snapshot = ChildSnapshot(child_key="c", episodes_30d=2**40, changed_at=datetime(1, 1, 1, tzinfo=UTC))
    fitted, changed = fit(*[(t, r[0]) for t, r in [rows_for(CHILD_STATES, snapshot)]][0])
    assert sorted(changed) == ["changed_at", "episodes_30d"]
    assert fitted["episodes_30d"] == 2**32 - 1 and fitted["changed_at"] == datetime(1900, 1, 1, tzinfo=UTC)


def test_a_dead_letter_with_70006_errors_gives_101_rows_that_fit() -> None:
    letter = DeadLetter(errors=[{"loc": "<unknown field>", "msg": "Extra inputs are not permitted"}] * 70006,
                        original="", topic="t", partition=0, offset=1, received_at=datetime(2026, 1, 1, tzinfo=UTC))
    table, rows = rows_for(DEADLETTER, letter)
    assert len(rows) == 101 and {row["error_count"] for row in rows} == {70006}
    fitted, changed = fit(table, rows[-1])
    assert changed == ["error_count"] and fitted["error_count"] == 65535 and fitted["error_index"] == 100


def test_partition_of_is_the_utc_month_of_partitioned_tables() -> None:
    moment = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert partition_of("events", {"occurred_at": moment}) == 202603
    assert partition_of("place_links", {"occurred_at": moment}) == 202603
    assert partition_of("alerts", {"opened_at": moment}) == 0


class PickyClient(FakeClient):
    """Refuses, as not retryable, any batch holding a row whose event_id is in `poison`."""

    def __init__(self, poison: set[str]) -> None:
        super().__init__()
        self.poison = poison
        self.attempts: list[int] = []

    def insert(self, table: str, rows: list[list[object]], column_names: list[str], database: str | None = None,
               settings: dict[str, str] | None = None) -> None:
        self.attempts.append(len(rows))
        if table == "events" and any(row[0] in self.poison for row in rows):
            raise ProgrammingError("Code: 469. DB::Exception: Constraint `c` for table events is violated at row 1."
                                   " Expression: (event_id != 'Jane Smith')")
        super().insert(table, rows, column_names, database, settings)


def _facts(count: int, months: int = 1) -> list[Fact]:
    start = datetime(2026, 1, 15, tzinfo=UTC)
    return [Fact(event_id=f"event-{index:04d}", event_type="missing.ended", agency="police", child_keys=["k"],
                 occurred_at=start.replace(year=start.year + (index % months) // 12, month=1 + (index % months) % 12))
            for index in range(count)]


def test_a_row_that_cannot_be_written_is_isolated_and_rejected_and_the_rest_written() -> None:
    client = PickyClient({"event-0005", "Jane Smith"})
    facts = _facts(12)
    facts[5] = facts[5].model_copy(update={"system": "Jane Smith"})
    writer = BatchWriter(client, sleep=lambda _: pytest.fail("not retryable: no sleep"))  # type: ignore[arg-type]
    for offset, fact in enumerate(facts):
        writer.add_rows(*rows_for(EVENTS, fact), source=("events-topic", 3, 100 + offset))
    assert writer.flush() == 12 and writer.pending == 0
    written = [str(row[0]) for table, rows, _ in client.inserts if table == "events" for row in rows]
    assert sorted(written) == sorted(f.event_id for f in facts if f.event_id != "event-0005")
    rejects = [row for table, rows, _ in client.inserts if table == "sink_rejects" for row in rows]
    assert writer.rejected == 1 and len(rejects) == 1
    rejected = dict(zip(REJECT_COLUMNS, rejects[0], strict=True))
    assert (rejected["table"], rejected["topic"], rejected["partition"], rejected["offset"]) == (
        "events", "events-topic", 3, 105)
    assert rejected["error_class"] == "clickhouse_connect.driver.exceptions.ProgrammingError"
    assert "Code: 469" in str(rejected["error_message"])
    assert not any("Jane Smith" in str(value) or "event-0005" in str(value) for value in rejects[0])
    assert max(client.attempts) == 12 and len(client.attempts) <= 2 * 4 + 2  # halves, not one insert per row


def test_retries_exhausted_rejects_the_rows_and_the_backoff_is_bounded() -> None:
    class Busy(FakeClient):
        def insert(self, table: str, rows: list[list[object]], column_names: list[str],
                   database: str | None = None, settings: dict[str, str] | None = None) -> None:
            if table == "events":
                raise DatabaseError("Code: 202. DB::Exception: Too many simultaneous queries")
            super().insert(table, rows, column_names, database, settings)

    sleeps: list[float] = []
    client = Busy()
    writer = BatchWriter(client, max_attempts=6, backoff=1.0, max_backoff=4.0,  # type: ignore[arg-type]
                         sleep=sleeps.append)
    writer.add_rows(*rows_for(EVENTS, _facts(1)[0]), source=("t", 0, 9))
    writer.add_rows(*rows_for(ALERTS, RECORDS["alerts"]), source=("a", 0, 1))
    assert writer.flush() == 2
    assert sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert sorted(table for table, _, _ in client.inserts) == ["alerts", "sink_rejects"]
    assert writer.rejected == 1 and writer.rows_written == 1


def test_what_is_retryable() -> None:
    assert is_retryable(ConnectionError()) and is_retryable(TimeoutError()) and is_retryable(OperationalError("x"))
    assert is_retryable(DatabaseError("Code: 252. DB::Exception: Too many parts (300)"))
    assert is_retryable(DatabaseError("Code: 159. DB::Exception: Timeout exceeded"))
    assert not is_retryable(DatabaseError("Code: 53. DB::Exception: Type mismatch"))
    assert not is_retryable(ProgrammingError("Code: 60. Unknown table"))
    assert not is_retryable(TypeError("bad value")) and not is_retryable(OverflowError())


def test_an_error_about_the_store_raises_rather_than_rejecting_every_row() -> None:
    class NoTable(FakeClient):
        def insert(self, table: str, rows: list[list[object]], column_names: list[str],
                   database: str | None = None, settings: dict[str, str] | None = None) -> None:
            self.inserts.append((table, list(rows), settings))
            raise DatabaseError("Code: 60. DB::Exception: Table db.events does not exist. (UNKNOWN_TABLE)")

    client = NoTable()
    writer = BatchWriter(client, sleep=lambda _: None)  # type: ignore[arg-type]
    for fact in _facts(8):
        writer.add_rows(*rows_for(EVENTS, fact))
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE"):
        writer.flush()
    assert len(client.inserts) == 1 and writer.pending == 8 and writer.rejected == 0


def test_a_reject_message_keeps_no_value() -> None:
    error = ValueError("Cannot parse 'Jane Smith' as UInt16: \"CV1 2GN\" at row 3, value 1234567890")
    message = scrubbed_message(error, [["x", 1234567890, ["tag-value"]]])
    assert "Jane" not in message and "CV1" not in message and "1234567890" not in message
    assert message.startswith("Cannot parse '?' as UInt16") and len(scrubbed_message(ValueError("y" * 999))) == 300


def test_a_flush_inserts_one_partition_at_a_time() -> None:
    client = FakeClient()
    writer = BatchWriter(client, batch_size=50)  # type: ignore[arg-type]
    for fact in _facts(300, months=150):
        writer.add_rows(*rows_for(EVENTS, fact))
    assert writer.flush() == 300
    months = [{(moment.year, moment.month) for row in rows if isinstance(moment := row[2], datetime)}
              for _, rows, _ in client.inserts]
    assert len(client.inserts) == 150 and all(len(month) == 1 for month in months)
    assert len(set().union(*months)) == 150
