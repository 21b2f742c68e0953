"""`sgi simulate`: deterministic, contract-valid (bar the planted faults), calibrated, and private.

Two generated periods are shared by the tests: a small month with 5% malformed messages, and the
default 90 days at full scale (the same run `make demo` uses, seed 2015).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.events import (
    CMOG_EVENT_TYPES,
    EVENT_TYPES,
    RESIDENTIAL,
    ChildEvent,
    Event,
    event_identifiers,
    nhs_number_ok,
    parse_event,
    upn_ok,
)
from sgi import simulate as sim
from simulator import CityConfig, SimMessage, generate, simulate
from simulator.city import WARDS
from simulator.world import nhs_number, upn
from streams.core.clock import encompass_deadline as core_encompass_deadline
from streams.core.config import load_rules

ZONE = load_rules().zone


def encompass_deadline(incident: datetime) -> datetime:
    """The deadline the simulator aims its notices at: the core's, in the configured zone."""
    return core_encompass_deadline(incident, ZONE)

START = datetime(2015, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)
SMALL = CityConfig(scale=0.1)


@pytest.fixture(scope="module")
def month() -> list[SimMessage]:
    return generate(days=30, seed=7, start=START, malformed_share=0.05, config=CityConfig(scale=0.25))


@pytest.fixture(scope="module")
def quarter() -> list[SimMessage]:
    return generate(days=90, seed=2015, start=START)


@pytest.fixture(scope="module")
def quarter_events(quarter: list[SimMessage]) -> list[Event]:
    parsed = [parse_event(m.raw)[0] for m in quarter]
    return [e for e in parsed if e is not None]


def child_keys(events: list[Event]) -> dict[tuple[str, str], tuple[str, str]]:
    """Union-find over identifiers that arrive together or are linked: identifier -> one child's root."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(x: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for event in events:
        ids = [(i.scheme.value, i.normalised) for i in event_identifiers(event)]
        for other in ids:
            parent[root(other)] = root(ids[0])
    return {x: root(x) for x in parent}


def first_key(event: Event, roots: dict[tuple[str, str], tuple[str, str]]) -> tuple[str, str]:
    identifier = event_identifiers(event)[0]
    return roots[(identifier.scheme.value, identifier.normalised)]


# --- determinism and the contract ------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs() -> None:
    first = list(simulate(days=30, seed=11, start=START, config=SMALL))
    again = list(simulate(days=30, seed=11, start=START, config=SMALL))
    other = list(simulate(days=30, seed=12, start=START, config=SMALL))
    assert first == again
    assert first != other
    assert all(isinstance(line, bytes) and not line.endswith(b"\n") for line in first)


def test_good_lines_keep_the_contract_and_broken_ones_break_it(month: list[SimMessage]) -> None:
    invalid = 0
    for message in month:
        event, errors = parse_event(message.raw)
        if message.fault is None:
            assert event is not None, (message.raw, errors)
        else:
            invalid += 1
            assert event is None, f"{message.fault} did not break the contract: {message.raw!r}"
            assert errors and all(e.loc and e.msg for e in errors)
    assert 0.03 <= invalid / len(month) <= 0.07
    kinds = Counter(m.fault for m in month if m.fault)
    assert len(kinds) >= 8, kinds


def test_no_malformed_messages_when_the_share_is_zero() -> None:
    lines = list(simulate(days=14, seed=3, start=START, malformed_share=0.0, config=SMALL))
    assert all(parse_event(line)[0] is not None for line in lines)


def test_default_share_is_about_two_percent(quarter: list[SimMessage], quarter_events: list[Event]) -> None:
    assert 0.015 <= 1 - len(quarter_events) / len(quarter) <= 0.025


def test_ninety_days_is_a_demo_sized_stream_with_every_event_type(
    quarter: list[SimMessage], quarter_events: list[Event]
) -> None:
    assert 20_000 <= len(quarter) <= 60_000
    counts = Counter(e.event_type for e in quarter_events)
    # Every partner event type of v1. The city's CMOG meetings (the v1.1 cmog.* types) are not simulated yet.
    partner_types = set(EVENT_TYPES) - CMOG_EVENT_TYPES
    assert set(counts) == partner_types, partner_types - set(counts)
    agencies = {e.source.agency.value for e in quarter_events}
    assert agencies >= {"police", "childrens_social_care", "health", "education", "youth_justice", "housing",
                        "voluntary_sector"}


def test_stream_is_in_recorded_order_with_some_arriving_days_late(quarter_events: list[Event]) -> None:
    seen: set[str] = set()
    recorded = []
    for event in quarter_events:
        if str(event.event_id) in seen:
            continue  # an exact re-send comes later than its recorded_at
        seen.add(str(event.event_id))
        if event.recorded_at is not None:
            recorded.append(event.recorded_at)
    assert recorded == sorted(recorded)
    in_period = [e for e in quarter_events if e.occurred_at >= START and e.recorded_at is not None]
    late = [e for e in in_period if e.recorded_at - e.occurred_at > timedelta(days=1)]  # type: ignore[operator]
    assert 0.01 <= len(late) / len(in_period) <= 0.15
    assert max(e.recorded_at - e.occurred_at for e in in_period) <= timedelta(days=7)  # type: ignore[operator]
    assert len(seen) < len(quarter_events), "a few exact re-sends"


# --- calibration -----------------------------------------------------------------------------------


def test_child_protection_plans_match_the_calibration(quarter_events: list[Event]) -> None:
    started = {e.payload.plan_ref: e for e in quarter_events if e.event_type == "cp_plan.started"}
    ended = {e.payload.plan_ref: e.occurred_at for e in quarter_events if e.event_type == "cp_plan.ended"}
    categories = Counter(e.payload.category.value for e in started.values())
    total = sum(categories.values())
    assert abs(categories["EMO"] / total - 0.478) < 0.08
    assert abs(categories["NEG"] / total - 0.433) < 0.08
    assert 0.03 <= (categories["SAB"] + categories["PHY"] + categories["MUL"]) / total <= 0.16
    assert categories["MUL"] / total < 0.03
    repeat = sum(e.payload.previous_plans >= 1 for e in started.values()) / total
    assert 0.10 <= repeat <= 0.20

    midpoint = START + timedelta(days=45)
    open_plans = [e for ref, e in started.items() if e.occurred_at <= midpoint < ended.get(ref, START + 100 * DAY)]
    assert 0.85 * 578 <= len(open_plans) <= 1.1 * 578
    bands = Counter(_age_band(e, midpoint) for e in open_plans if e.child.birth_month)
    known = sum(bands.values())
    assert abs(bands["4-11"] / known - 0.502) < 0.08
    assert abs(bands["0-3"] / known - 0.282) < 0.08
    assert 0.01 <= bands["unborn"] / known <= 0.08


def _age(event: ChildEvent, at: datetime) -> int | None:
    """Whole years at `at` from the birth month (negative: not yet born), or None when not sent."""
    if event.child.birth_month is None:
        return None
    year, month = (int(p) for p in event.child.birth_month.split("-"))
    return (at.year * 12 + at.month - year * 12 - month) // 12


def _age_band(event: ChildEvent, at: datetime) -> str | None:
    age = _age(event, at)
    if age is None:
        return None
    if age < 0:
        return "unborn"
    return "0-3" if age <= 3 else "4-11" if age <= 11 else "12-16" if age <= 16 else "17+"


def test_missing_episodes_look_real(quarter_events: list[Event]) -> None:
    episodes: dict[str, dict[str, Any]] = defaultdict(dict)
    for event in quarter_events:
        if event.event_type.startswith(("missing.", "return_interview.")):
            episodes[event.payload.episode_ref][event.event_type] = event  # type: ignore[union-attr]
    durations = sorted(
        (e["missing.ended"].occurred_at - e["missing.started"].occurred_at) / timedelta(hours=1)
        for e in episodes.values() if "missing.ended" in e and "missing.started" in e
    )
    assert durations[len(durations) // 2] < 12, "most end within hours"
    assert 0.01 < sum(d > 24 for d in durations) / len(durations) < 0.10, "a few last over a day"
    risks = Counter(e["missing.started"].payload.police_risk for e in episodes.values() if "missing.started" in e)
    assert risks["low"] + risks["medium"] > 4 * risks["high"] > 0
    assert any("missing.risk_graded" in e for e in episodes.values())

    roots = child_keys(quarter_events)
    starts = sorted((e.occurred_at, first_key(e, roots)) for e in quarter_events if e.event_type == "missing.started")
    per_child = Counter(child for _, child in starts)
    repeaters = [c for c, n in per_child.items() if n >= 3]
    assert 0 < len(repeaters) < 0.3 * len(per_child), "a minority go missing repeatedly"

    outcomes = Counter()
    for e in episodes.values():
        if "missing.ended" not in e:
            continue
        deadline = e["missing.ended"].occurred_at + timedelta(hours=72)
        if "return_interview.completed" in e:
            outcomes["in time" if e["return_interview.completed"].occurred_at <= deadline else "late"] += 1
        elif "return_interview.declined" in e:
            outcomes["declined"] += 1
        else:
            outcomes["never"] += 1
    assert outcomes["in time"] > max(outcomes["late"], outcomes["declined"], outcomes["never"])
    assert min(outcomes.values()) > 0


def test_domestic_abuse_incidents(quarter_events: list[Event]) -> None:
    incidents = [e for e in quarter_events if e.event_type == "da.incident"]
    assert all(0 <= e.payload.dash_score <= 24 for e in incidents if e.payload.dash_score is not None)
    high = [e for e in incidents if e.payload.dash_risk and e.payload.dash_risk.value == "high"]
    referred = sum(e.payload.marac_referred for e in high) / len(high)
    assert 0.6 < referred < 1.0, "mostly, not always, referred to MARAC"
    children_per_incident = Counter(e.payload.incident_ref for e in incidents)
    assert max(children_per_incident.values()) >= 3
    ages = {id(e): _age(e, e.occurred_at) for e in incidents}
    school_age = [e for e in incidents if e.source.agency.value == "police" and (ages[id(e)] or 0) >= 4]
    on_time = [e for e in school_age if e.payload.encompass_notified_at
               and e.payload.encompass_notified_at <= encompass_deadline(e.occurred_at)]
    late = [e for e in school_age if e.payload.encompass_notified_at
            and e.payload.encompass_notified_at > encompass_deadline(e.occurred_at)]
    missing = [e for e in school_age if e.payload.encompass_notified_at is None]
    assert len(on_time) > 3 * (len(late) + len(missing)) and late and missing


def test_cse_assessments_include_rises_and_under_13_low(quarter_events: list[Event]) -> None:
    roots = child_keys(quarter_events)
    rank = {"none": 0, "low": 1, "medium": 2, "high": 3}
    last: dict[tuple[str, str], int] = {}
    rises = 0
    assessments = sorted((e for e in quarter_events if e.event_type == "cse.risk_assessed"),
                         key=lambda e: e.occurred_at)
    for event in assessments:
        child, level = first_key(event, roots), rank[event.payload.level.value]
        rises += level >= 2 and level > last.get(child, 0)
        last[child] = level
    levels = Counter(e.payload.level.value for e in assessments)
    assert levels["none"] + levels["low"] > levels["medium"] + levels["high"] > 0
    assert rises > 0
    under_13 = [e for e in assessments if (age := _age(e, e.occurred_at)) is not None and age < 13]
    assert any(e.payload.level.value == "low" for e in under_13)


# --- planted patterns ------------------------------------------------------------------------------


def test_planted_hotspots_link_several_children_within_28_days(quarter_events: list[Event]) -> None:
    roots = child_keys(quarter_events)
    visits: dict[tuple[str, str], list[tuple[datetime, tuple[str, str]]]] = defaultdict(list)
    for event in quarter_events:
        places = []
        if event.event_type in ("missing.started", "missing.ended") and event.location is not None:
            places = [event.location]
        elif event.event_type == "return_interview.completed":
            places = list(event.payload.places)
        for place in places:
            premises = place.premises
            if premises is not None and premises.category in {"hotel", "takeaway", "taxi_firm"}:
                assert premises.name and premises.ref
                visits[(premises.category.value, premises.ref)].append((event.occurred_at, first_key(event, roots)))

    def most_children_in_28_days(seen: list[tuple[datetime, tuple[str, str]]]) -> int:
        return max(len({c for t, c in seen if t0 <= t < t0 + timedelta(days=28)}) for t0, _ in seen)

    hotspots = {place: most_children_in_28_days(seen) for place, seen in visits.items()}
    planted = {place: n for place, n in hotspots.items() if n >= 3}
    assert {category for category, _ in planted} == {"hotel", "takeaway", "taxi_firm"}
    assert len(planted) >= 3


def test_month_long_runs_still_plant_hotspots(month: list[SimMessage]) -> None:
    text = b"\n".join(m.raw for m in month)
    assert all(ref in text for ref in (b"HOT001", b"HOT002", b"HOT003"))


def test_identity_links_join_identifiers_that_arrive_apart(quarter_events: list[Event]) -> None:
    together = [
        {(i.scheme.value, i.normalised) for i in event_identifiers(e)}
        for e in quarter_events if e.event_type != "identity.linked"
    ]
    links = [e for e in quarter_events if e.event_type == "identity.linked"]
    assert links and all(e.source.agency.value == "childrens_social_care" for e in links)
    joining = 0
    for link in links:
        first, second = [(i.scheme.value, i.normalised) for i in link.payload.identifiers][:2]
        apart_first = any(first in ids and second not in ids for ids in together)
        apart_second = any(second in ids and first not in ids for ids in together)
        joining += apart_first and apart_second
    assert joining >= 10


# --- privacy and plausibility -----------------------------------------------------------------------

DATETIME_KEYS = {"occurred_at", "recorded_at", "encompass_notified_at", "occured_at"}
ALLOWED_NAME_KEYS = {"ward_name", "name"}  # "name" only inside premises, checked below


def _walk(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _walk(v, (*path, k))]
    if isinstance(value, list):
        return [item for v in value for item in _walk(v, path)]
    return [(path, value)]


def test_no_names_of_people_and_no_full_dates_of_birth(quarter: list[SimMessage], month: list[SimMessage]) -> None:
    full_date = re.compile(r"\d{4}-\d{2}-\d{2}")
    for message in quarter + month:
        assert not re.search(rb"dob|date_of_birth|birth_date|forename|surname|first_name|last_name", message.raw,
                             re.IGNORECASE)
        try:
            doc = json.loads(message.raw)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        for path, value in _walk(doc):
            key = path[-1]
            if "name" in key:
                assert key in ALLOWED_NAME_KEYS and (key == "ward_name" or path[-2] == "premises"), path
            if key == "name":
                assert value.endswith("(fictional)"), value
            if isinstance(value, str) and full_date.search(value):
                assert key in DATETIME_KEYS, (path, value)
            if key == "birth_month" and message.fault is None:
                assert re.fullmatch(r"\d{4}-\d{2}", value)


def test_premises_names_are_kept_only_for_non_residential_places(quarter_events: list[Event]) -> None:
    for event in quarter_events:
        if event.location is not None and event.location.premises is not None:
            premises = event.location.premises
            assert premises.name is None or premises.category not in RESIDENTIAL


def test_places_are_in_coventry(quarter_events: list[Event]) -> None:
    wards = {w.code: w.name for w in WARDS}
    assert sorted(wards) == [f"E0500{n}" for n in range(1218, 1236)]
    for event in quarter_events:
        location = event.location
        if location is None:
            continue
        if location.postcode:
            assert re.fullmatch(r"CV[1-6] \d[A-Z]{2}", location.postcode)
        if location.ward_code:
            assert location.ward_code in wards
        if location.ward_name:
            assert location.ward_name in wards.values()
        if location.lat is not None:
            assert 52.37 <= location.lat <= 52.45 and -1.58 <= location.lon <= -1.43  # type: ignore[operator]


def test_identifier_generators_are_valid() -> None:
    rng = random.Random(5)
    for _ in range(500):
        assert nhs_number_ok(nhs_number(rng))
        value = upn(rng, "331", 2009)
        assert upn_ok(value) and value[1:4] == "331"


def test_encompass_deadline_is_9am_london_on_the_next_weekday() -> None:
    friday_night = datetime(2015, 1, 9, 22, 0, tzinfo=UTC)
    assert encompass_deadline(friday_night) == datetime(2015, 1, 12, 9, 0, tzinfo=UTC)
    summer_tuesday = datetime(2015, 6, 9, 20, 0, tzinfo=UTC)
    assert encompass_deadline(summer_tuesday) == datetime(2015, 6, 10, 8, 0, tzinfo=UTC)  # 09:00 BST


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        generate(days=10, seed=1, start=datetime(2015, 1, 1), config=SMALL)  # noqa: DTZ001
    with pytest.raises(ValueError):
        generate(days=0, seed=1, start=START, config=SMALL)
    with pytest.raises(ValueError):
        generate(days=10, seed=1, start=START, malformed_share=1.5, config=SMALL)


# --- the command -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sgi")
    sim.add_parser(parser.add_subparsers())
    return parser


def test_every_option_has_help() -> None:
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    command = subparsers.choices["simulate"]
    options = [a for a in command._actions if a.option_strings and a.dest != "help"]
    assert {o.dest for o in options} >= {"days", "seed", "start", "malformed_share", "scale", "out", "publish",
                                         "bootstrap", "rate", "speedup"}
    assert all(o.help for o in options)


def test_command_writes_json_lines_and_a_summary(tmp_path, capsys) -> None:
    out = tmp_path / "events.jsonl"
    args = _parser().parse_args(["simulate", "--days", "14", "--seed", "9", "--scale", "0.1",
                                 "--start", "2015-01-05", "--out", str(out)])
    assert args.func(args) == 0
    lines = out.read_bytes().splitlines()
    assert lines == list(simulate(days=14, seed=9, start=START, config=SMALL))
    err = capsys.readouterr().err
    assert f"simulated {len(lines)} messages" in err and "missing.started" in err and "malformed" in err


def test_command_publishes_through_the_publisher(monkeypatch) -> None:
    sent: dict[str, Any] = {}

    def fake_publish(  # type: ignore[no-untyped-def]
        messages, bootstrap, topic=None, total=None, progress=True, security=None
    ):
        sent["lines"], sent["bootstrap"], sent["total"] = list(messages), bootstrap, total
        sent["security"] = security
        return len(sent["lines"])

    monkeypatch.setattr("sgi.publish.publish_messages", fake_publish)
    monkeypatch.delenv("SGI_KAFKA_SECURITY_PROTOCOL", raising=False)
    args = _parser().parse_args(["simulate", "--days", "7", "--scale", "0.1", "--start", "2015-01-05",
                                 "--publish", "--bootstrap", "broker:9092"])
    assert args.func(args) == 0
    assert sent["bootstrap"] == "broker:9092" and sent["total"] == len(sent["lines"]) > 0
    assert sent["security"] == {}  # PLAINTEXT: no login options


def test_realtime_pacing_follows_recorded_at(monkeypatch) -> None:
    now = [1000.0]
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(sim.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(sim.time, "sleep", fake_sleep)
    messages = [SimMessage(START + timedelta(seconds=s), b"{}", "x") for s in (-50, 0, 100, 400)]
    assert list(sim._paced(messages, speedup=100.0, start=START)) == [b"{}"] * 4
    assert sleeps == [pytest.approx(1.0), pytest.approx(3.0)]  # history before the start goes at once


def test_the_city_keeps_the_configured_time_zone() -> None:
    """Partner systems write local time in the configured zone (the rules config's), not a fixed one."""
    from zoneinfo import ZoneInfo

    start = datetime(2015, 1, 5, tzinfo=UTC)
    config = CityConfig(scale=0.05, zone=ZoneInfo("America/New_York"))
    docs = [json.loads(m.raw) for m in generate(3, 11, start, 0.0, config)]
    # Plans open at the start are sent with their real, earlier start: summer offsets appear too.
    assert docs and {doc["occurred_at"][-6:] for doc in docs} <= {"-05:00", "-04:00"}
    default = [json.loads(m.raw) for m in generate(3, 11, start, 0.0, CityConfig(scale=0.05))]
    assert {doc["occurred_at"][-6:] for doc in default} <= {"+00:00", "+01:00"}
