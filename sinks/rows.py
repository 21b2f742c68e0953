"""Derived records -> ClickHouse rows. Pure: no I/O, no clock.

The one home of "which record type fills which table" (TABLE_BY_MODEL) and of the mapping itself.
`rows_for(topic_or_kind, record, zone) -> (table, rows)` maps one record to the rows of one table:
one row for every record except a dead letter, which gives one row per error (and never its
`original` bytes, which may hold raw identifiers). Each table's insert columns are fixed by
`COLUMNS[table]`; columns ClickHouse fills itself (events.ingested_at, lateness_seconds) are not
among them. Datetimes are converted to UTC, enums to their values. Local days and ages use `zone`,
the rules config's time zone (RulesConfig.zone), as the stream rules do.

`fit(table, row)` makes a row storable whatever the record held: a datetime a column cannot hold
(DateTime64(3) spans 1900..2299; the contract bounds `occurred_at` but not, e.g., `encompass_notified_at`)
becomes NULL in a Nullable column and the nearest end of the range in a required one; an integer beyond
its column's type likewise. It returns the columns it changed, so the writer can count and log them.
`partition_of(table, row)` is the row's partition (its UTC month where the table is partitioned by
month), so the writer can insert one partition at a time.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from models.derived import Alert, ChildSnapshot, DeadLetter, Episode, Fact, Place, PlaceLink, Record
from streams.core.clock import age_at
from streams.core.config import load_rules
from streams.topics import ALERTS, CHILD_STATES, DEADLETTER, EPISODES, EVENTS, PLACE_LINKS

Row = dict[str, Any]
# Pydantic messages name the field and the rule, not the value; the cap is a backstop.
MAX_ERROR_TEXT = 300

PLACE_COLUMNS: tuple[str, ...] = (
    "postcode_sector",
    "ward_code",
    "ward_name",
    "lat",
    "lon",
    "premises_category",
    "premises_name",
    "premises_ref",
)

EVENTS_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "occurred_at",
    "recorded_at",
    "agency",
    "system",
    "record_key",
    "child_key",
    "child_keys",
    "birth_month",
    "age_at_event",
    "sex",
    "looked_after",
    "learning_disability",
    *PLACE_COLUMNS,
    "episode_ref",
    "classification",
    "setting",
    "police_risk",
    "disclosures",
    "named_place_count",
    "cse_level",
    "cse_tool",
    "cse_indicators",
    "incident_ref",
    "child_present",
    "marac_referred",
    "dash_score",
    "dash_risk",
    "encompass_notified_at",
    "plan_ref",
    "cp_category",
    "previous_plans",
    # v1.1, the CMOG's records
    "listing_reason",
    "alert_ids",
    "meeting_ref",
    "decision",
    "review_risk",
    "action_ref",
    "owner_agency",
    "due_at",
    "action_kind",
    "action_status",
)

EPISODES_COLUMNS: tuple[str, ...] = (
    "child_key",
    "episode_ref",
    "classification",
    "setting",
    "police_risk",
    "started_at",
    "ended_at",
    "last_seen_place",
    "found_place",
    "interview",
    "interview_at",
    "data_quality",
    "changed_at",
)

CHILD_STATE_COLUMNS: tuple[str, ...] = (
    "child_key",
    "merged_keys",
    "birth_month",
    "age_band",
    "sex",
    "looked_after",
    "learning_disability",
    "cse_level",
    "cp_plan_active",
    "cp_category",
    "missing_now",
    "episodes_30d",
    "episodes_90d",
    "last_interview_at",
    "da_incidents_12m",
    "agencies",
    "open_alerts",
    "last_event_at",
    "changed_at",
    "retired",
)

ALERTS_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "rule",
    "subject_kind",
    "subject",
    "status",
    "opened_at",
    "resolved_at",
    "evidence",
    "summary",
    "changed_at",
    "reviewed_at",
)

PLACE_LINKS_COLUMNS: tuple[str, ...] = (
    "place_key",
    "place_kind",
    "child_key",
    "event_id",
    "role",
    "occurred_at",
    "child_cse_level",
    *PLACE_COLUMNS,
)

DEADLETTER_COLUMNS: tuple[str, ...] = (
    "day",
    "hour",
    "received_at",
    "agency",
    "event_type",
    "error_index",
    "error_count",
    "error_loc",
    "error_msg",
    "topic",
    "partition",
    "offset",
    "size_bytes",
)

# table -> the columns the sink inserts, in order
COLUMNS: dict[str, tuple[str, ...]] = {
    "events": EVENTS_COLUMNS,
    "episodes": EPISODES_COLUMNS,
    "child_state": CHILD_STATE_COLUMNS,
    "alerts": ALERTS_COLUMNS,
    "place_links": PLACE_LINKS_COLUMNS,
    "deadletter": DEADLETTER_COLUMNS,
}

# Kafka topic -> kind; a kind is named after the table it fills.
KIND_BY_TOPIC: dict[str, str] = {
    EVENTS: "events",
    EPISODES: "episodes",
    CHILD_STATES: "child_state",
    ALERTS: "alerts",
    PLACE_LINKS: "place_links",
    DEADLETTER: "deadletter",
}

MODEL_BY_KIND: dict[str, type[Record]] = {
    "events": Fact,
    "episodes": Episode,
    "child_state": ChildSnapshot,
    "alerts": Alert,
    "place_links": PlaceLink,
    "deadletter": DeadLetter,
}
# record type -> the table it fills
TABLE_BY_MODEL: dict[type[Record], str] = {model: kind for kind, model in MODEL_BY_KIND.items()}


@cache
def shipped_zone() -> ZoneInfo:
    """The shipped rules config's time zone: the default for callers that pass none."""
    return load_rules().zone


def table_of(record: Record) -> str:
    """The table a derived record fills, by its type."""
    try:
        return TABLE_BY_MODEL[type(record)]
    except KeyError:
        raise KeyError(f"no table for a {type(record).__name__}") from None


def kind_of(topic_or_kind: str) -> str:
    """'events' or 'safeguarding.events.v1' -> 'events'."""
    kind = KIND_BY_TOPIC.get(topic_or_kind, topic_or_kind)
    if kind not in MODEL_BY_KIND:
        raise KeyError(f"no table for {topic_or_kind!r}; known: {', '.join(sorted(KIND_BY_TOPIC))}")
    return kind


def decode(topic_or_kind: str, value: bytes | str) -> Record:
    """A message value (the model's JSON) -> the derived record of its topic. Raises ValidationError."""
    return MODEL_BY_KIND[kind_of(topic_or_kind)].model_validate_json(value)


# --- value conversions -------------------------------------------------------------------------


def _v(value: Any) -> Any:
    """An enum's value; anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


def _ts(moment: datetime | None) -> datetime | None:
    """UTC; a moment Python cannot express in UTC (year 9999 at -10:00) is pushed to the edge of the
    representable range, which `fit` then treats as out of any column's range."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if moment.year > 1 else datetime.min.replace(tzinfo=UTC)


def _values(items: list[Any]) -> list[Any]:
    return [_v(item) for item in items]


def age_in_years(birth_month: str | None, moment: datetime, zone: ZoneInfo) -> int | None:
    """The core's age (streams.core.clock.age_at) as the UInt8 column holds it: None without a birth
    month or for a moment before it (an unborn child)."""
    if not birth_month:
        return None
    try:
        age = age_at(birth_month, moment, zone)
    except (ValueError, OverflowError):  # not YYYY-MM (the contract refuses it), or a moment at Python's limits
        return None
    return age if age is not None and 0 <= age <= 255 else None


def _place_values(place: Place | None) -> Row:
    if place is None:
        return dict.fromkeys(PLACE_COLUMNS)
    return {
        "postcode_sector": place.postcode_sector,
        "ward_code": place.ward_code,
        "ward_name": place.ward_name,
        "lat": place.lat,
        "lon": place.lon,
        "premises_category": _v(place.premises_category),
        "premises_name": place.premises_name,
        "premises_ref": place.premises_ref,
    }


# --- one mapping per kind ----------------------------------------------------------------------


def event_row(fact: Fact, zone: ZoneInfo) -> Row:
    """`child_key` is child_keys[0], the Fact's topic key: the Fact carries no canonical key yet.
    If one is added to Fact, it belongs here instead."""
    return {
        "event_id": fact.event_id,
        "event_type": fact.event_type,
        "occurred_at": _ts(fact.occurred_at),
        "recorded_at": _ts(fact.recorded_at),
        "agency": _v(fact.agency),
        "system": fact.system,
        "record_key": fact.record_key,
        "child_key": fact.child_keys[0] if fact.child_keys else "",
        "child_keys": list(fact.child_keys),
        "birth_month": fact.birth_month,
        "age_at_event": age_in_years(fact.birth_month, fact.occurred_at, zone),
        "sex": _v(fact.sex),
        "looked_after": fact.looked_after,
        "learning_disability": fact.learning_disability,
        **_place_values(fact.place),
        "episode_ref": fact.episode_ref,
        "classification": _v(fact.classification),
        "setting": _v(fact.setting),
        "police_risk": _v(fact.police_risk),
        "disclosures": _values(fact.disclosures),
        "named_place_count": len(fact.named_places),
        "cse_level": _v(fact.cse_level),
        "cse_tool": fact.cse_tool,
        "cse_indicators": list(fact.cse_indicators),
        "incident_ref": fact.incident_ref,
        "child_present": fact.child_present,
        "marac_referred": fact.marac_referred,
        "dash_score": fact.dash_score,
        "dash_risk": _v(fact.dash_risk),
        "encompass_notified_at": _ts(fact.encompass_notified_at),
        "plan_ref": fact.plan_ref,
        "cp_category": _v(fact.cp_category),
        "previous_plans": fact.previous_plans,
        "listing_reason": _v(fact.listing_reason),
        "alert_ids": list(fact.alert_ids),
        "meeting_ref": fact.meeting_ref,
        "decision": _v(fact.decision),
        "review_risk": _v(fact.review_risk),
        "action_ref": fact.action_ref,
        "owner_agency": _v(fact.owner_agency),
        "due_at": _ts(fact.due_at),
        "action_kind": _v(fact.action_kind),
        "action_status": _v(fact.action_status),
    }


def episode_row(episode: Episode) -> Row:
    return {
        "child_key": episode.child_key,
        "episode_ref": episode.episode_ref,
        "classification": _v(episode.classification),
        "setting": _v(episode.setting),
        "police_risk": _v(episode.police_risk),
        "started_at": _ts(episode.started_at),
        "ended_at": _ts(episode.ended_at),
        "last_seen_place": episode.last_seen_place,
        "found_place": episode.found_place,
        "interview": episode.interview,
        "interview_at": _ts(episode.interview_at),
        "data_quality": list(episode.data_quality),
        "changed_at": _ts(episode.changed_at),
    }


def child_state_row(snapshot: ChildSnapshot) -> Row:
    return {
        "child_key": snapshot.child_key,
        "merged_keys": list(snapshot.merged_keys),
        "birth_month": snapshot.birth_month,
        "age_band": snapshot.age_band,
        "sex": _v(snapshot.sex),
        "looked_after": snapshot.looked_after,
        "learning_disability": snapshot.learning_disability,
        "cse_level": _v(snapshot.cse_level),
        "cp_plan_active": snapshot.cp_plan_active,
        "cp_category": _v(snapshot.cp_category),
        "missing_now": snapshot.missing_now,
        "episodes_30d": snapshot.episodes_30d,
        "episodes_90d": snapshot.episodes_90d,
        "last_interview_at": _ts(snapshot.last_interview_at),
        "da_incidents_12m": snapshot.da_incidents_12m,
        "agencies": list(snapshot.agencies),
        "open_alerts": list(snapshot.open_alerts),
        "last_event_at": _ts(snapshot.last_event_at),
        "changed_at": _ts(snapshot.changed_at),
        "retired": snapshot.retired,
    }


def alert_row(alert: Alert) -> Row:
    return {
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "subject_kind": alert.subject_kind,
        "subject": alert.subject,
        "status": alert.status,
        "opened_at": _ts(alert.opened_at),
        "resolved_at": _ts(alert.resolved_at),
        "evidence": list(alert.evidence),
        "summary": alert.summary,
        "changed_at": _ts(alert.changed_at),
        "reviewed_at": _ts(alert.reviewed_at),
    }


def place_link_row(link: PlaceLink) -> Row:
    return {
        "place_key": link.place_key,
        "place_kind": link.place_kind,
        "child_key": link.child_key,
        "event_id": link.event_id,
        "role": link.role,
        "occurred_at": _ts(link.occurred_at),
        "child_cse_level": _v(link.child_cse_level),
        **_place_values(link.place),
    }


def _size_of(original: str) -> int:
    """Length of the rejected message in bytes (the bytes themselves are never stored)."""
    try:
        return len(base64.b64decode(original, validate=True))
    except (binascii.Error, ValueError):
        return len(original)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The local day of a moment: days are counted as the people reading the dashboards count them."""
    return moment.astimezone(zone).date()


def _day(moment: datetime, zone: ZoneInfo) -> date:
    try:
        return local_day(moment, zone)
    except OverflowError:  # at the very ends of Python's range; `fit` clamps it to the column's
        return moment.date()


# Ingest reports at most 100 errors plus one saying how many more; an older letter may list more.
MAX_DEADLETTER_ROWS = 101


def deadletter_rows(letter: DeadLetter, zone: ZoneInfo) -> list[Row]:
    """One row per error (the first MAX_DEADLETTER_ROWS; error_count keeps the full count); a letter
    without errors still counts once, as '(unknown)'."""
    received = _ts(letter.received_at) or letter.received_at
    all_errors = letter.errors or [{"loc": "(message)", "msg": "(unknown)"}]
    errors = all_errors[:MAX_DEADLETTER_ROWS]
    common = {
        "day": _day(received, zone),
        "hour": received.replace(minute=0, second=0, microsecond=0),
        "received_at": received,
        "agency": letter.agency,
        "event_type": letter.event_type,
        "error_count": len(all_errors),
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "size_bytes": letter.original_bytes if letter.original_bytes is not None else _size_of(letter.original),
    }
    rows = [
        {
            **common,
            "error_index": index,
            "error_loc": str(error.get("loc", ""))[:MAX_ERROR_TEXT],
            "error_msg": str(error.get("msg", ""))[:MAX_ERROR_TEXT],
        }
        for index, error in enumerate(errors)
    ]
    return [{column: row[column] for column in DEADLETTER_COLUMNS} for row in rows]


# kind -> the mapping of one record of that kind (and the local time zone) to its rows
MAPPER_BY_KIND: dict[str, Callable[[Any, ZoneInfo], list[Row]]] = {
    "events": lambda fact, zone: [event_row(fact, zone)],
    "episodes": lambda episode, _: [episode_row(episode)],
    "child_state": lambda snapshot, _: [child_state_row(snapshot)],
    "alerts": lambda alert, _: [alert_row(alert)],
    "place_links": lambda link, _: [place_link_row(link)],
    "deadletter": deadletter_rows,
}


def rows_for(topic_or_kind: str, record: Record, zone: ZoneInfo | None = None) -> tuple[str, list[Row]]:
    """(table, rows) for one derived record read from `topic_or_kind` (a topic name or a table name).
    `zone`: the configured time zone (None: the shipped rules config's)."""
    kind = kind_of(topic_or_kind)
    expected = MODEL_BY_KIND[kind]
    if not isinstance(record, expected):
        raise TypeError(f"{topic_or_kind!r} carries {expected.__name__}, got {type(record).__name__}")
    rows = MAPPER_BY_KIND[kind](record, zone or shipped_zone())
    return kind, rows


def rows_of(record: Record, zone: ZoneInfo | None = None) -> tuple[str, list[Row]]:
    """(table, rows) for a derived record whose table follows from its type (TABLE_BY_MODEL)."""
    return rows_for(table_of(record), record, zone)


# --- what a column can hold --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bounds:
    low: Any
    high: Any
    nullable: bool


DATETIME64 = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
DATETIME32 = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC))
DATE16 = (date(1970, 1, 1), date(2149, 6, 6))
UINT8, UINT16, UINT32, UINT64 = ((0, 2**bits - 1) for bits in (8, 16, 32, 64))


def _b(low_high: tuple[Any, Any], nullable: bool) -> Bounds:
    return Bounds(low_high[0], low_high[1], nullable)


def _datetime_columns(nullable: set[str], required: set[str]) -> dict[str, Bounds]:
    return {**{c: _b(DATETIME64, True) for c in nullable}, **{c: _b(DATETIME64, False) for c in required}}


# table -> column -> what its ClickHouse type holds (the schema/*.sql types of every bounded column).
BOUNDS: dict[str, dict[str, Bounds]] = {
    "events": {
        **_datetime_columns({"recorded_at", "encompass_notified_at"}, {"occurred_at"}),
        "age_at_event": _b(UINT8, True),
        "named_place_count": _b(UINT16, False),
        "dash_score": _b(UINT8, True),
        "previous_plans": _b(UINT16, True),
    },
    "episodes": _datetime_columns({"started_at", "ended_at", "interview_at"}, {"changed_at"}),
    "child_state": {
        **_datetime_columns({"last_interview_at", "last_event_at"}, {"changed_at"}),
        "episodes_30d": _b(UINT32, False),
        "episodes_90d": _b(UINT32, False),
        "da_incidents_12m": _b(UINT32, False),
    },
    "alerts": _datetime_columns({"resolved_at"}, {"opened_at", "changed_at"}),
    "place_links": _datetime_columns(set(), {"occurred_at"}),
    "deadletter": {
        "day": _b(DATE16, False),
        "hour": _b(DATETIME32, False),
        "received_at": _b(DATETIME64, False),
        "error_index": _b(UINT16, False),
        "error_count": _b(UINT16, False),
        "partition": _b(UINT32, False),
        "offset": _b(UINT64, False),
        "size_bytes": _b(UINT32, False),
    },
}


def fit(table: str, row: Row) -> tuple[Row, list[str]]:
    """The row with every bounded value its column can hold (see the module docstring), and the names
    of the columns changed. Never the values themselves: they may be partner data."""
    changed: list[str] = []
    fitted = dict(row)
    for column, bounds in BOUNDS.get(table, {}).items():
        value = row.get(column)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(bounds.low, datetime) != isinstance(value, datetime):
            continue  # not the kind of value the column holds: the insert reports it
        if bounds.low <= value <= bounds.high:
            continue
        fitted[column] = None if bounds.nullable else (bounds.low if value < bounds.low else bounds.high)
        changed.append(column)
    return fitted, changed


# table -> the column whose UTC month partitions it (schema: PARTITION BY toYYYYMM(column)).
MONTH_PARTITIONED: dict[str, str] = {"events": "occurred_at", "place_links": "occurred_at"}


def partition_of(table: str, row: Mapping[str, Any]) -> int:
    """The row's partition as YYYYMM (0 for a table that is not partitioned)."""
    column = MONTH_PARTITIONED.get(table)
    moment = row.get(column) if column else None
    return moment.year * 100 + moment.month if isinstance(moment, datetime) else 0


def as_tuple(table: str, row: Mapping[str, Any]) -> list[Any]:
    """A row dict as the positional values of COLUMNS[table] (a missing column is an error)."""
    return [row[column] for column in COLUMNS[table]]
