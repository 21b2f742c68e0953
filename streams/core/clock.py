"""Time helpers for the rules: deadlines in local time, ages from birth months, the watermark.

Nothing here reads the wall clock: `now` is always passed in (STYLE principle 7).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Deadline rules fire once the clock has *passed* the deadline; datetimes are exact to the
# microsecond, so deadline + TICK is the first moment a tick can find a deadline missed.
TICK = timedelta(microseconds=1)

WEEKEND = frozenset({5, 6})  # date.weekday(): Saturday, Sunday


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC: alerts carry UTC so their JSON is the same whatever offset an event used."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every datetime in the pipeline carries an offset")
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return as_utc(moment).isoformat()


def next_school_day(day: date, non_school_days: Iterable[date] = ()) -> date:
    """The first weekday (Mon-Fri) after `day` that is not listed as a non-school day."""
    skipped = frozenset(non_school_days)
    candidate = day + timedelta(days=1)
    while candidate.weekday() in WEEKEND or candidate in skipped:
        candidate += timedelta(days=1)
    return candidate


def encompass_deadline(
    incident_at: datetime, zone: ZoneInfo, at: time = time(9, 0), non_school_days: Iterable[date] = ()
) -> datetime:
    """09:00 local time on the next weekday after the incident's local date, in UTC.

    "The next weekday after the incident", not "the next 09:00": an incident Monday 08:00 is due
    Tuesday 09:00, an incident Friday 20:00 Monday 09:00. zoneinfo gives the right offset on each
    side of a BST/GMT change (09:00 BST is 08:00 UTC, 09:00 GMT is 09:00 UTC).
    """
    local_day = as_utc(incident_at).astimezone(zone).date()
    due_day = next_school_day(local_day, non_school_days)
    return datetime.combine(due_day, at, tzinfo=zone).astimezone(UTC)


def parse_birth_month(birth_month: str) -> tuple[int, int]:
    year, month = birth_month.split("-")
    return int(year), int(month)


def age_at(birth_month: str | None, moment: datetime, zone: ZoneInfo) -> int | None:
    """Completed years at `moment` (local date), the birthday taken as the 1st of the birth month.

    Only the month is known (never a full date of birth); the 1st is the convention because it
    is the same for every child born that month. None when the birth month is unknown.
    """
    if birth_month is None:
        return None
    year, month = parse_birth_month(birth_month)
    local = as_utc(moment).astimezone(zone)
    return local.year - year - (1 if local.month < month else 0)


def next_birthday(birth_month: str | None, after: datetime, zone: ZoneInfo) -> datetime | None:
    """The first moment after `after` when `age_at` goes up by one (midnight local, 1st of the month)."""
    if birth_month is None:
        return None
    _, month = parse_birth_month(birth_month)
    local = as_utc(after).astimezone(zone)
    for year in (local.year, local.year + 1):
        birthday = datetime(year, month, 1, tzinfo=zone)
        if birthday > local:
            return birthday.astimezone(UTC)
    return None  # unreachable: next year's birthday is always after `after`


AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 3, "0-3"),
    (4, 9, "4-9"),
    (10, 12, "10-12"),
    (13, 15, "13-15"),
    (16, 17, "16-17"),
)


def age_band(age: int | None) -> str | None:
    """A coarse band for dashboards: exact ages are not needed to read a chart, and leak more."""
    if age is None:
        return None
    if age < 0:
        return "unborn"
    for low, high, label in AGE_BANDS:
        if low <= age <= high:
            return label
    return "18+"


def advance_watermark(watermark: datetime | None, occurred_at: datetime) -> datetime:
    """The replay clock: the latest occurred_at seen so far (nothing subtracted for lateness)."""
    return occurred_at if watermark is None or occurred_at > watermark else watermark
