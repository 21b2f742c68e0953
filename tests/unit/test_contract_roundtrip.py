"""Round trip and published schema.

- Property: any valid event (all 12 types, optional fields present or absent, any offset) survives
  `model_dump_json()` -> `parse_event` unchanged.
- The committed JSON Schema in contracts/ is what `schema_files()` generates now, and valid events
  validate against it (when the `jsonschema` package is installed).
"""

from __future__ import annotations

import functools
import json
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.events import EVENT_CLASSES, UPN_LETTERS, parse_event
from sgi.contract import schema_files
from tests.unit.contract_builders import EVENT_TYPES, full, minimal, nhs_check_digit, upn

ROOT = Path(__file__).parents[2]
CONTRACTS = ROOT / "contracts"

# --- strategies: JSON documents that keep the contract ------------------------------------------

AGENCIES = ["police", "childrens_social_care", "health", "education", "youth_justice", "housing",
            "voluntary_sector", "other"]
PREMISES = ["home", "foster_home", "childrens_home", "supported_accommodation", "school", "hotel", "takeaway",
            "licensed_premises", "taxi_firm", "shop", "park", "transport_hub", "address_of_concern", "other"]
DISCLOSURES = ["cse", "cce", "county_lines", "substance_misuse", "missing_with_peers", "adults_of_concern",
               "self_harm", "abuse_at_home", "bullying", "other"]
POSTCODES = ["CV1 2GN", "cv12gn", "SW1A 1AA", "M1 1AE", "B33 8TH", "EC1A 1BB", "W1A 0AX", "DN55 1PT", "CR2 6XH",
             "GIR 0AA", " cv6  5aa "]

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
alert_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
ref = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30).filter(
    lambda s: s.strip() != ""
)


@st.composite
def nhs_numbers(draw: st.DrawFn) -> str:
    first_nine = draw(st.integers(0, 999_999_999).map(lambda n: f"{n:09d}"))
    check = nhs_check_digit(first_nine)
    if check is None:
        first_nine = first_nine[:8] + ("1" if first_nine[8] == "0" else "0")
        check = nhs_check_digit(first_nine)
        if check is None:  # pragma: no cover - two adjacent 9-digit prefixes cannot both need a 10
            first_nine, check = "943476591", 9
    digits = f"{first_nine}{check}"
    return draw(st.sampled_from([digits, f"{digits[:3]} {digits[3:6]} {digits[6:]}", f" {digits} "]))


@st.composite
def upns(draw: st.DrawFn) -> str:
    body = draw(st.text(string.digits, min_size=11, max_size=11))
    last = draw(st.sampled_from(string.digits + UPN_LETTERS))  # a final letter makes a temporary UPN
    return upn(body + last)


free_text_id = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=44).filter(
    lambda s: 1 <= len(s.strip()) <= 40
)

identifiers = st.one_of(
    st.builds(lambda v: {"scheme": "nhs_number", "value": v}, nhs_numbers()),
    st.builds(lambda v: {"scheme": "upn", "value": v}, upns()),
    st.builds(
        lambda s, v: {"scheme": s, "value": v},
        st.sampled_from(["la_person_id", "police_person_id", "health_local_id"]),
        free_text_id,
    ),
)

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
# hypothesis takes naive bounds and attaches one of `offsets` to each value
aware = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)  # noqa: DTZ001
# occurred_at: from 1990-01-01 (UTC; a day's margin for the offset) to a past moment (the bound is "now + 1 day")
occurred_times = st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2026, 11, 1),  # noqa: DTZ001
                              timezones=offsets)


def iso(dt: datetime) -> str:
    text_ = dt.isoformat()
    return text_[:-6] + "Z" if text_.endswith("+00:00") else text_


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value, or the field absent (`None` here), or an explicit JSON null."""
    return st.one_of(st.just(None), st.just(_NULL), strategy)


_NULL = object()  # an explicit null in the document


def absent_or(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Optional lists: present or absent (they default to empty; the contract gives them no null)."""
    return st.one_of(st.just(None), strategy)


def compact(**fields: Any) -> dict[str, Any]:
    return {k: (None if v is _NULL else v) for k, v in fields.items() if v is not None}


coordinates = st.tuples(
    st.floats(-90, 90, allow_nan=False, allow_infinity=False),
    st.floats(-180, 180, allow_nan=False, allow_infinity=False),
)


@st.composite
def locations(draw: st.DrawFn) -> dict[str, Any]:
    doc = compact(
        postcode=draw(optional(st.sampled_from(POSTCODES))),
        ward_code=draw(optional(st.from_regex(r"\A(E05|W05|S13|N08)[0-9]{6}\Z"))),
        ward_name=draw(optional(ref)),
        premises=draw(optional(st.builds(
            lambda c, n, r: compact(category=c, name=n, ref=r),
            st.sampled_from(PREMISES), optional(ref), optional(ref),
        ))),
    )
    if draw(st.booleans()):
        doc["lat"], doc["lon"] = draw(coordinates)
    return doc


episode = st.fixed_dictionaries({"episode_ref": ref})


def payloads(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    police_risk = st.sampled_from(["no_apparent_risk", "low", "medium", "high"])
    category = st.sampled_from(["NEG", "PHY", "SAB", "EMO", "MUL"])
    match event_type:
        case "missing.started":
            return st.builds(
                lambda e, c, s, r: compact(episode_ref=e, classification=c, setting=s, police_risk=r),
                ref, st.sampled_from(["missing", "absent"]), st.sampled_from(["home", "care", "education"]),
                optional(police_risk),
            )
        case "missing.risk_graded":
            return st.builds(lambda e, r: {"episode_ref": e, "police_risk": r}, ref, police_risk)
        case "missing.ended" | "return_interview.offered":
            return episode
        case "return_interview.completed":
            return st.builds(
                lambda e, d, p: compact(episode_ref=e, disclosures=d, places=p),
                ref, absent_or(st.lists(st.sampled_from(DISCLOSURES), max_size=4)),
                absent_or(st.lists(locations(), max_size=3)),
            )
        case "return_interview.declined":
            return st.builds(lambda e, r: compact(episode_ref=e, reason=r), ref, optional(text))
        case "cse.risk_assessed":
            return st.builds(
                lambda lv, t, i: compact(level=lv, tool=t, indicators=i),
                st.sampled_from(["none", "low", "medium", "high"]),
                optional(text),
                absent_or(st.lists(text, max_size=3)),
            )
        case "da.incident":
            return st.builds(
                lambda r, cp, mr, s, dr, en: compact(incident_ref=r, child_present=cp, marac_referred=mr,
                                                     dash_score=s, dash_risk=dr, encompass_notified_at=en),
                ref, st.booleans(), st.booleans(), optional(st.integers(0, 24)),
                optional(st.sampled_from(["standard", "medium", "high"])), optional(aware.map(iso)),
            )
        case "cp_plan.started":
            return st.builds(lambda r, c, n: {"plan_ref": r, "category": c, "previous_plans": n},
                             ref, category, st.integers(0, 50))
        case "cp_plan.category_changed":
            return st.builds(lambda r, c: {"plan_ref": r, "category": c}, ref, category)
        case "cp_plan.ended":
            return st.builds(lambda r, why: compact(plan_ref=r, reason=why), ref, optional(text))
        case "cmog.listed":
            return st.builds(lambda r, a: compact(reason=r, alert_ids=a),
                             st.sampled_from(["alert", "partner_concern", "return_interview", "other"]),
                             absent_or(st.lists(alert_ids, max_size=5)))
        case "cmog.reviewed":
            return st.builds(lambda m, d, r, a: compact(meeting_ref=m, decision=d, risk=r, alert_ids=a),
                             ref, st.sampled_from(["keep", "step_down", "close"]),
                             st.sampled_from(["low", "medium", "high"]), absent_or(st.lists(alert_ids, max_size=5)))
        case "cmog.action.set":  # due_at is set from occurred_at in events(): it must be within five years
            return st.builds(lambda r, o, k: {"action_ref": r, "owner_agency": o, "kind": k},
                             ref, st.sampled_from(AGENCIES),
                             st.sampled_from(["return_interview", "safety_plan", "disruption", "strategy_meeting",
                                              "referral", "information_sharing", "other"]))
        case "cmog.action.updated":
            return st.builds(lambda r, s_: {"action_ref": r, "status": s_}, ref,
                             st.sampled_from(["in_progress", "done", "cancelled"]))
        case "identity.linked":
            # two different identifiers at least: a link of one identifier to itself is rejected
            distinct = st.lists(identifiers, min_size=2, max_size=5,
                                unique_by=lambda i: (i["scheme"], i["value"].replace(" ", "").upper()))
            return st.builds(lambda ids: {"identifiers": ids}, distinct)
    raise AssertionError(event_type)


@st.composite
def children(draw: st.DrawFn, occurred: datetime) -> dict[str, Any]:
    latest = occurred.year * 12 + occurred.month - 1 + 9  # birth_month: 1990-01 .. nine months after occurred_at
    month = st.integers(1990 * 12, latest).map(lambda m: f"{m // 12:04d}-{m % 12 + 1:02d}")
    return compact(
        identifiers=draw(st.lists(identifiers, min_size=1, max_size=4)),
        birth_month=draw(optional(month)),
        sex=draw(optional(st.sampled_from("FMXU"))),
        looked_after=draw(optional(st.booleans())),
        learning_disability=draw(optional(st.booleans())),
    )


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    occurred = draw(occurred_times)
    recorded = None
    if draw(st.booleans()):
        delay = draw(st.timedeltas(timedelta(0), timedelta(days=30)))
        recorded = iso((occurred + delay).astimezone(draw(offsets)))
    doc = compact(
        event_id=str(draw(st.uuids())),
        event_type=event_type,
        schema_version=1,
        occurred_at=iso(occurred),
        recorded_at=recorded,
        source=compact(
            agency=draw(st.sampled_from(AGENCIES)),
            system=draw(optional(text)),
            record_ref=draw(optional(text)),
        ),
        location=draw(optional(locations())),
        payload=draw(payloads(event_type)),
    )
    if event_type == "cmog.action.set":
        due = occurred + draw(st.timedeltas(-timedelta(days=30), timedelta(days=4 * 365)))
        doc["payload"]["due_at"] = iso(due.astimezone(draw(offsets)))
    if event_type != "identity.linked":
        doc["child"] = draw(children(occurred))
    return doc


# --- the property ---------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_valid_event_round_trips(doc: dict[str, Any]) -> None:
    event, errors = parse_event(json.dumps(doc))
    assert errors == [], (doc, errors)
    assert isinstance(event, EVENT_CLASSES[doc["event_type"]])

    again, errors = parse_event(event.model_dump_json())
    assert errors == []
    assert again == event
    assert type(again) is type(event)
    # the same instant and the same offset, not merely an equal instant
    assert again.occurred_at.utcoffset() == event.occurred_at.utcoffset()
    assert again.model_dump_json() == event.model_dump_json()


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("build", [minimal, full], ids=["minimal", "full"])
def test_builder_events_round_trip(event_type: str, build: Any) -> None:
    event, _ = parse_event(json.dumps(build(event_type)))
    assert event is not None
    assert parse_event(event.model_dump_json()) == (event, [])


def test_round_trip_keeps_the_offset() -> None:
    doc = minimal("missing.started")
    doc["occurred_at"] = "2026-03-29T00:30:00-03:30"
    event, _ = parse_event(json.dumps(doc))
    assert event is not None
    again, _ = parse_event(event.model_dump_json())
    assert again is not None
    assert again.occurred_at.isoformat() == "2026-03-29T00:30:00-03:30"
    assert again.occurred_at == datetime(2026, 3, 29, 4, 0, tzinfo=UTC)


# --- the published JSON Schema --------------------------------------------------------------


def test_committed_schema_is_current() -> None:
    generated = schema_files()
    committed = {p.name: p.read_text(encoding="utf-8") for p in CONTRACTS.glob("*.schema.json")}
    stale = sorted(name for name in generated.keys() | committed.keys() if generated.get(name) != committed.get(name))
    assert not stale, f"contracts/ is stale ({', '.join(stale)}): run `make schema`"


def test_every_event_type_has_a_schema_file() -> None:
    names = set(schema_files())
    assert names == {f"{t}.schema.json" for t in EVENT_TYPES} | {"event.schema.json"}
    for event_type in EVENT_TYPES:
        path = CONTRACTS / f"{event_type}.schema.json"
        assert path.is_file(), f"{path} missing: run `make schema`"
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"safeguarding/contract/v1/{event_type}.schema.json"
        assert schema["properties"]["event_type"]["const"] == event_type


def test_schema_files_are_deterministic() -> None:
    assert schema_files() == schema_files()


def _validator(name: str) -> Any:
    pytest.importorskip("jsonschema")
    return _cached_validator(name)


@functools.cache
def _cached_validator(name: str) -> Any:
    import jsonschema

    schema = json.loads((CONTRACTS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("build", [minimal, full], ids=["minimal", "full"])
def test_builder_events_validate_against_published_schema(event_type: str, build: Any) -> None:
    doc = build(event_type)
    for name in ("event.schema.json", f"{event_type}.schema.json"):
        errors = [e.message for e in _validator(name).iter_errors(doc)]
        assert errors == [], (name, errors)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_published_schema_rejects_unknown_fields_and_wrong_type(event_type: str) -> None:
    validator = _validator("event.schema.json")
    doc = minimal(event_type)
    doc["payload"]["note"] = "x"
    assert list(validator.iter_errors(doc))
    doc = minimal(event_type)
    doc["event_type"] = "nope"
    assert list(validator.iter_errors(doc))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_generated_events_validate_against_published_schema(doc: dict[str, Any]) -> None:
    """The schema may be looser than the models (check digits are not expressible), never stricter."""
    errors = [e.message for e in _validator("event.schema.json").iter_errors(doc)]
    assert errors == [], errors
