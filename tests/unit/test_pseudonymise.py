"""`to_fact` / `ingest`: nothing identifying leaves validation (EVENTS.md "Identity", "Location").

A Fact carries HMAC keys, a postcode sector, lat/lon at ~100 m, a premises name only for a
non-residential place, and no free-text reason or source record id. An invalid message becomes a
DeadLetter with its errors, its original bytes and where it came from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from models.derived import DeadLetter, Fact
from models.events import parse_event
from streams.core.ingest import DEADLETTER_KEEP_BYTES, CseVocabulary, Origin, ingest, ref_key, to_fact, to_place
from tests.unit.contract_builders import (
    EVENT_TYPES,
    NHS_DIGITS,
    NHS_NUMBER,
    UPN,
    dumps,
    full,
    identifier,
    minimal,
    mutate,
)

SECRET = b"test-secret-one"
OTHER_SECRET = b"test-secret-two"
ORIGIN = Origin(topic="safeguarding.inbound.v1", partition=3, offset=41_207,
                received_at=datetime(2026, 3, 1, 14, 6, tzinfo=UTC))

LA_ID = "LA-000123"
POLICE_ID = "PNC-7781X"
HEALTH_ID = "RKB-99123"
RECORD_REF = "CASE-884211"
HOME_NAME = "12 Acacia Avenue"
HOME_REF = "UPRN-100070"
REASON = "Disclosed that Uncle Bob drove her"


def fact_of(doc: dict[str, Any], secret: bytes = SECRET) -> Fact:
    result = ingest(secret, dumps(doc), ORIGIN)
    assert isinstance(result, Fact), result
    return result


def fact_json(doc: dict[str, Any], secret: bytes = SECRET) -> str:
    return fact_of(doc, secret).model_dump_json()


def sensitive(event_type: str) -> dict[str, Any]:
    """A full event carrying every kind of raw value that must not survive pseudonymisation."""
    doc = full(event_type)
    ids = [identifier("nhs_number", NHS_NUMBER), identifier("upn", UPN), identifier("la_person_id", LA_ID),
           identifier("police_person_id", POLICE_ID), identifier("health_local_id", HEALTH_ID)]
    if event_type == "identity.linked":
        doc["payload"]["identifiers"] = ids
    else:
        doc["child"]["identifiers"] = ids
    doc["source"]["record_ref"] = RECORD_REF
    doc["location"] = {"postcode": "cv12gn", "lat": 52.407681, "lon": -1.512345,
                       "premises": {"category": "home", "name": HOME_NAME, "ref": HOME_REF}}
    if event_type in ("return_interview.declined", "cp_plan.ended"):
        doc["payload"]["reason"] = REASON
    if event_type == "return_interview.completed":
        doc["payload"]["places"] = [
            {"postcode": "CV6 5AA", "premises": {"category": "foster_home", "name": "The Smiths' house", "ref": "F-1"}},
            {"postcode": "CV2 4GA", "premises": {"category": "childrens_home", "name": "Oak Lodge"}},
        ]
    return doc


FORBIDDEN = [NHS_DIGITS, NHS_NUMBER, "943476", "4765919", UPN, UPN.lower(), LA_ID, POLICE_ID, HEALTH_ID,
             RECORD_REF, HOME_NAME, HOME_REF, REASON, "Uncle Bob", "CV1 2GN", "CV12GN", "cv12gn", "2GN",
             "CV6 5AA", "5AA", "The Smiths", "F-1", "Oak Lodge", "CV2 4GA", "52.407681", "-1.512345", "52.4076"]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_no_raw_identifier_or_detail_in_the_fact(event_type: str) -> None:
    text = fact_json(sensitive(event_type))
    for raw in FORBIDDEN:
        assert raw not in text, f"{raw!r} leaked into the {event_type} fact"
    assert "Smith" not in text


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_identifier_becomes_an_hmac_key(event_type: str) -> None:
    fact = fact_of(sensitive(event_type))
    expected = [
        hmac.new(SECRET, f"{scheme}:{value}".encode(), hashlib.sha256).hexdigest()
        for scheme, value in [("nhs_number", NHS_DIGITS), ("upn", UPN), ("la_person_id", LA_ID),
                              ("police_person_id", POLICE_ID), ("health_local_id", HEALTH_ID)]
    ]
    assert fact.child_keys == expected
    assert all(len(k) == 64 for k in fact.child_keys)


def key_of(scheme: str, value: str, secret: bytes = SECRET) -> str:
    doc = mutate(minimal("missing.started"), "child.identifiers", [identifier(scheme, value)])
    [key] = fact_of(doc, secret).child_keys
    return key


@pytest.mark.parametrize(
    ("scheme", "one", "other"),
    [
        ("nhs_number", "9434765919", "943 476 5919"),
        ("nhs_number", "9434765919", " 94 347 659 19 "),
        ("la_person_id", "LA-1", "  LA-1 "),
        ("police_person_id", "P7", "P7\t"),
        ("health_local_id", " H1", "H1"),
        ("upn", UPN, f" {UPN} "),
    ],
)
def test_keys_are_stable_for_the_same_identifier_written_differently(scheme: str, one: str, other: str) -> None:
    assert key_of(scheme, one) == key_of(scheme, other)


def test_keys_differ_under_another_secret() -> None:
    assert key_of("nhs_number", NHS_DIGITS) != key_of("nhs_number", NHS_DIGITS, OTHER_SECRET)
    assert key_of("la_person_id", LA_ID) != key_of("la_person_id", LA_ID, OTHER_SECRET)


def test_keys_differ_by_scheme_and_value() -> None:
    assert key_of("la_person_id", "123") != key_of("police_person_id", "123")
    assert key_of("la_person_id", "LA-1") != key_of("la_person_id", "LA-2")


def test_identity_linked_keys_all_its_identifiers() -> None:
    fact = fact_of(sensitive("identity.linked"))
    assert len(fact.child_keys) == 5
    assert fact.child_keys[0] == key_of("nhs_number", NHS_NUMBER)
    assert fact.child_keys[2] == key_of("la_person_id", LA_ID)


def test_duplicate_identifiers_give_one_key() -> None:
    doc = mutate(minimal("missing.started"), "child.identifiers",
                 [identifier("nhs_number", NHS_DIGITS), identifier("nhs_number", NHS_NUMBER)])
    assert fact_of(doc).child_keys == [key_of("nhs_number", NHS_DIGITS)]


def test_record_ref_is_keyed_not_kept() -> None:
    fact = fact_of(sensitive("missing.started"))
    assert fact.record_key is not None and len(fact.record_key) == 64
    assert fact.record_key != fact_of(sensitive("missing.started"), OTHER_SECRET).record_key
    assert fact_of(minimal("missing.started")).record_key is None


@pytest.mark.parametrize(
    ("postcode", "sector"),
    [("cv12gn", "CV1 2"), ("CV1 2GN", "CV1 2"), ("SW1A 1AA", "SW1A 1"), ("M1 1AE", "M1 1"), ("DN55 1PT", "DN55 1")],
)
def test_postcode_becomes_its_sector(postcode: str, sector: str) -> None:
    fact = fact_of(mutate(minimal("missing.started"), "location", {"postcode": postcode}))
    assert fact.place is not None
    assert fact.place.postcode_sector == sector


@pytest.mark.parametrize(
    ("lat", "lon", "rounded"),
    [(52.407681, -1.512345, (52.408, -1.512)), (52.4, -1.5, (52.4, -1.5)), (-33.86785, 151.20732, (-33.868, 151.207)),
     (90.0, 180.0, (90.0, 180.0)), (0.0004, -0.0004, (0.0, -0.0))],
)
def test_lat_lon_rounded_to_3_decimal_places(lat: float, lon: float, rounded: tuple[float, float]) -> None:
    fact = fact_of(mutate(minimal("missing.started"), "location", {"lat": lat, "lon": lon}))
    assert fact.place is not None
    assert (fact.place.lat, fact.place.lon) == rounded


@pytest.mark.parametrize("category", ["home", "foster_home", "childrens_home", "supported_accommodation"])
def test_residential_premises_lose_their_name_and_their_ref_is_keyed(category: str) -> None:
    loc = {"premises": {"category": category, "name": HOME_NAME, "ref": HOME_REF}}
    fact = fact_of(mutate(minimal("missing.ended"), "location", loc))
    assert fact.place is not None
    assert fact.place.premises_category == category
    assert fact.place.premises_name is None
    assert fact.place.premises_ref is not None and HOME_REF not in fact.place.premises_ref
    assert HOME_NAME not in fact.model_dump_json()


@pytest.mark.parametrize("category", ["school", "hotel", "takeaway", "licensed_premises", "taxi_firm", "shop", "park",
                                      "transport_hub", "address_of_concern", "other"])
def test_non_residential_premises_keep_their_name(category: str) -> None:
    loc = {"premises": {"category": category, "name": "Chicken Palace"}}
    fact = fact_of(mutate(minimal("missing.ended"), "location", loc))
    assert fact.place is not None
    assert fact.place.premises_name == "Chicken Palace"
    assert fact.place.premises_category == category


def test_interview_places_are_pseudonymised_too() -> None:
    fact = fact_of(sensitive("return_interview.completed"))
    assert [p.postcode_sector for p in fact.named_places] == ["CV6 5", "CV2 4"]
    assert [p.premises_name for p in fact.named_places] == [None, None]
    assert fact.disclosures == ["cse", "county_lines"]


@pytest.mark.parametrize("event_type", ["return_interview.declined", "cp_plan.ended"])
def test_free_text_reason_is_dropped(event_type: str) -> None:
    fact = fact_of(sensitive(event_type))
    assert REASON not in fact.model_dump_json()
    assert "reason" not in fact.model_dump()


def test_to_fact_matches_ingest() -> None:
    doc = sensitive("da.incident")
    event, _ = parse_event(dumps(doc))
    assert event is not None
    assert to_fact(SECRET, event) == fact_of(doc)
    assert event.location is not None
    assert to_place(SECRET, event.location) == fact_of(doc).place


def test_fact_keeps_the_non_identifying_fields() -> None:
    fact = fact_of(sensitive("da.incident"))
    assert fact.event_id == full("da.incident")["event_id"]
    assert fact.event_type == "da.incident"
    assert fact.agency == "childrens_social_care"
    assert fact.system == "Mosaic"
    assert fact.birth_month == "2011-04"
    assert (fact.dash_score, fact.dash_risk, fact.child_present, fact.marac_referred) == (15, "high", True, False)
    assert fact.occurred_at.isoformat() == "2026-03-01T14:05:00+00:00"


# --- dead letters --------------------------------------------------------------------------------

INVALID = [
    dumps(mutate(minimal("da.incident"), "payload.dash_score", 25)),
    dumps(mutate(minimal("missing.started"), "child.identifiers.0.value", "9434765918")),
    b"not json at all",
    b"[1]",
    b"",
    b"\xff\xfe garbage",
]


@pytest.mark.parametrize("raw", INVALID, ids=lambda r: repr(r[:20]))
def test_invalid_message_becomes_a_dead_letter(raw: bytes) -> None:
    result = ingest(SECRET, raw, ORIGIN)
    assert isinstance(result, DeadLetter)
    assert result.errors
    for error in result.errors:
        assert set(error) == {"loc", "msg"}
        assert error["loc"] and error["msg"]
    assert base64.b64decode(result.original) == raw
    assert (result.topic, result.partition, result.offset) == ("safeguarding.inbound.v1", 3, 41_207)
    assert result.received_at == ORIGIN.received_at


def test_dead_letter_carries_errors_and_what_could_be_read() -> None:
    raw = dumps(mutate(minimal("da.incident"), "payload.dash_score", "12"))
    result = ingest(SECRET, raw, ORIGIN)
    assert isinstance(result, DeadLetter)
    assert [e["loc"] for e in result.errors] == ["payload.dash_score"]
    assert result.event_type == "da.incident"
    assert result.agency == "police"
    assert json.loads(base64.b64decode(result.original)) == json.loads(raw)


def test_dead_letter_of_unreadable_message_has_no_agency_or_type() -> None:
    result = ingest(SECRET, b"[1]", ORIGIN)
    assert isinstance(result, DeadLetter)
    assert result.agency is None and result.event_type is None


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 100_000], ids=["arrays", "objects"])
def test_deeply_nested_message_becomes_a_dead_letter(raw: bytes) -> None:
    try:
        result = ingest(SECRET, raw, ORIGIN)
    except RecursionError as exc:
        raise AssertionError(f"ingest raised {exc!r}") from exc
    assert isinstance(result, DeadLetter)
    assert base64.b64decode(result.original) == raw[:DEADLETTER_KEEP_BYTES]  # at most 64 KiB kept ...
    assert (result.original_bytes, result.original_sha256) == (len(raw), hashlib.sha256(raw).hexdigest())  # ... + these


# --- v1 clarifications: references keyed, CSE vocabulary, dead letters free of partner text ---------

REF = "CRIME/24/Jane Smith"


@pytest.mark.parametrize(("event_type", "field"), [
    ("missing.started", "episode_ref"), ("missing.risk_graded", "episode_ref"), ("missing.ended", "episode_ref"),
    ("return_interview.offered", "episode_ref"), ("return_interview.completed", "episode_ref"),
    ("return_interview.declined", "episode_ref"), ("da.incident", "incident_ref"), ("cp_plan.started", "plan_ref"),
    ("cp_plan.category_changed", "plan_ref"), ("cp_plan.ended", "plan_ref"),
    ("cmog.reviewed", "meeting_ref"), ("cmog.action.set", "action_ref"), ("cmog.action.updated", "action_ref"),
])
def test_references_are_keyed_like_identifiers(event_type: str, field: str) -> None:
    fact = fact_of(mutate(minimal(event_type), f"payload.{field}", REF))
    assert getattr(fact, field) == ref_key(SECRET, field, REF)
    assert "Jane" not in fact.model_dump_json() and "CRIME" not in fact.model_dump_json()
    # the same ref from another agency names the same episode, plan or incident
    other = mutate(mutate(minimal(event_type), f"payload.{field}", REF), "source.agency", "health")
    assert getattr(fact_of(other), field) == getattr(fact, field)


def test_cse_tool_and_indicators_are_kept_only_from_the_vocabulary() -> None:
    doc = mutate(mutate(minimal("cse.risk_assessed"), "payload.tool", "Barnardo's"),
                 "payload.indicators", ["going missing", "seen with Jane Smith"])
    fact = to_fact(SECRET, parse_event(dumps(doc))[0])  # type: ignore[arg-type]
    assert (fact.cse_tool, fact.cse_indicators) == (None, [])  # the default vocabulary keeps none
    vocabulary = CseVocabulary(tools=frozenset({"Barnardo's"}), indicators=frozenset({"going missing"}))
    fact = to_fact(SECRET, parse_event(dumps(doc))[0], vocabulary)  # type: ignore[arg-type]
    assert (fact.cse_tool, fact.cse_indicators) == ("Barnardo's", ["going missing"])


def test_a_dead_letter_names_only_contract_values_and_paths() -> None:
    doc = mutate(minimal("missing.started"), "source.agency", "Jane Smith's team")
    doc["Jane Smith"] = 1
    doc["payload"]["John Doe"] = {"nested": 1}
    result = ingest(SECRET, dumps(doc), ORIGIN)
    assert isinstance(result, DeadLetter)
    assert result.agency == "invalid" and result.event_type == "missing.started"
    locs = sorted(e["loc"] for e in result.errors)
    assert locs == ["<unknown field>", "payload.<unknown field>", "source.agency"], locs
    assert "Jane" not in json.dumps(result.errors) and "John" not in json.dumps(result.errors)
    unknown_type = ingest(SECRET, dumps(mutate(minimal("missing.started"), "event_type", "Jane Smith")), ORIGIN)
    assert isinstance(unknown_type, DeadLetter) and unknown_type.event_type == "invalid"


def test_a_dead_letter_of_a_huge_message_fits_the_message_limit() -> None:
    raw = b'{"event_type": "' + b"x" * 6_300_000 + b'"}'
    result = ingest(SECRET, raw, ORIGIN)
    assert isinstance(result, DeadLetter)
    assert len(result.model_dump_json()) < 1024 * 1024
    assert base64.b64decode(result.original) == raw[:DEADLETTER_KEEP_BYTES]
    assert (result.original_bytes, result.original_sha256) == (len(raw), hashlib.sha256(raw).hexdigest())


def test_an_encoded_surrogate_is_dead_lettered_and_the_letter_serialises() -> None:
    result = ingest(SECRET, b'{"event_type":"\xed\xa0\x80x"}', ORIGIN)
    assert isinstance(result, DeadLetter)
    assert result.event_type is None or result.event_type == "invalid"
    DeadLetter.model_validate_json(result.model_dump_json())
