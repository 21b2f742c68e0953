"""Every field rule of the event contract v1 (shared/contract/EVENTS.md): a good and a bad case.

A bad case asserts the exact error path (`loc`) a partner developer sees, and that the message is a
readable sentence, not a Python repr. Valid events come from contract_builders; each case changes
one field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.events import EVENT_CLASSES, FieldError, nhs_number_ok, parse_event, upn_check_letter
from tests.unit.contract_builders import (
    BUILDERS,
    CHILD_EVENT_TYPES,
    EVENT_TYPES,
    NHS_DIGITS,
    NHS_NUMBER,
    TEMPORARY_UPN,
    UPN,
    drop,
    dumps,
    full,
    identifier,
    minimal,
    mutate,
    nhs_number,
    upn,
)

DROP = object()  # sentinel: remove the field instead of setting it

AGENCIES = ["police", "childrens_social_care", "health", "education", "youth_justice", "housing",
            "voluntary_sector", "other"]
PREMISES = ["home", "foster_home", "childrens_home", "supported_accommodation", "school", "hotel", "takeaway",
            "licensed_premises", "taxi_firm", "shop", "park", "transport_hub", "address_of_concern", "other"]
DISCLOSURES = ["cse", "cce", "county_lines", "substance_misuse", "missing_with_peers", "adults_of_concern",
               "self_harm", "abuse_at_home", "bullying", "other"]


def assert_readable(msg: str) -> None:
    """A message a partner developer can act on: words, not a repr, no pydantic plumbing."""
    assert isinstance(msg, str)
    assert len(msg.split()) >= 2, msg
    assert any(c.isalpha() for c in msg), msg
    for plumbing in ("Value error,", "errors.pydantic.dev", "{'type'", "Traceback", "ctx="):
        assert plumbing not in msg, msg


def parse(doc: Any) -> tuple[Any, list[FieldError]]:
    return parse_event(dumps(doc))


def apply(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    return drop(doc, path) if value is DROP else mutate(doc, path, value)


def assert_valid(doc: Any) -> Any:
    event, errors = parse(doc)
    assert errors == [], errors
    assert event is not None
    return event


def assert_rejected(doc: Any, loc: str, msg_part: str | None = None) -> list[FieldError]:
    event, errors = parse(doc)
    assert event is None
    assert [e.loc for e in errors] == [loc], errors
    for error in errors:
        assert_readable(error.msg)
    if msg_part is not None:
        assert msg_part.lower() in errors[0].msg.lower(), errors[0].msg
    return errors


# ----------------------------------------------------------------------------------------------
# The builders themselves: one valid event of every type, minimal and full.
# ----------------------------------------------------------------------------------------------


def test_builders_cover_all_sixteen_types() -> None:
    assert set(BUILDERS) == set(EVENT_CLASSES) == set(EVENT_TYPES)
    assert len(EVENT_TYPES) == 16  # v1: 12, v1.1: the four cmog.* types


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("build", [minimal, full], ids=["minimal", "full"])
def test_builder_gives_a_valid_event(event_type: str, build: Any) -> None:
    event = assert_valid(build(event_type))
    assert isinstance(event, EVENT_CLASSES[event_type])
    assert event.event_type == event_type


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_named_builder(event_type: str) -> None:
    assert BUILDERS[event_type]() == minimal(event_type)
    assert_valid(BUILDERS[event_type]())


def test_mutate_and_drop_copy() -> None:
    doc = minimal("missing.started")
    changed = mutate(doc, "child.identifiers.0.value", "x")
    assert changed["child"]["identifiers"][0]["value"] == "x"
    assert doc["child"]["identifiers"][0]["value"] == NHS_NUMBER
    assert mutate(doc, "location.lat", 1.0)["location"] == {"lat": 1.0}
    assert "episode_ref" not in drop(doc, "payload.episode_ref")["payload"]
    assert "episode_ref" in doc["payload"]
    assert drop(full("identity.linked"), "payload.identifiers.0")["payload"]["identifiers"][0]["scheme"] == "upn"


# ----------------------------------------------------------------------------------------------
# Field rules: (event_type, path, value, expected loc or None when valid, message fragment)
# ----------------------------------------------------------------------------------------------

MS = "missing.started"
GOOD = None


def c(path: str, value: Any, loc: str | None, msg: str | None = None, *, t: str = MS, id: str | None = None) -> Any:
    return pytest.param(t, path, value, loc, msg, id=id or f"{t}:{path}={value!r:.40}")


ENVELOPE = [
    # event_id: a UUID string
    c("event_id", "0b7f1f4c-3d7e-4a8e-9b1a-2f3c4d5e6f70", GOOD),
    c("event_id", "0B7F1F4C-3D7E-4A8E-9B1A-2F3C4D5E6F70", GOOD),
    c("event_id", "not-a-uuid", "event_id", "UUID"),
    c("event_id", "0b7f1f4c-3d7e-4a8e-9b1a-2f3c4d5e6f7", "event_id", "UUID"),
    c("event_id", "", "event_id"),
    c("event_id", 12345, "event_id"),
    c("event_id", DROP, "event_id", "required"),
    # event_type: one of the 12
    c("event_type", "missing.start", "event_type", "missing.started"),
    c("event_type", "Missing.Started", "event_type"),
    c("event_type", "", "event_type"),
    c("event_type", 7, "event_type"),
    c("event_type", None, "event_type"),
    c("event_type", DROP, "event_type", "required"),
    # schema_version: the int 1
    c("schema_version", 1, GOOD),
    c("schema_version", 2, "schema_version", "1"),
    c("schema_version", 0, "schema_version"),
    c("schema_version", "1", "schema_version"),
    c("schema_version", None, "schema_version"),
    c("schema_version", DROP, "schema_version", "required"),
    # occurred_at: ISO 8601 with an offset
    c("occurred_at", "2026-03-01T14:05:00Z", GOOD),
    c("occurred_at", "2026-03-01T14:05:00+01:00", GOOD),
    c("occurred_at", "2026-03-01T14:05:00-05:30", GOOD),
    c("occurred_at", "2026-03-01T14:05:00.123456+05:45", GOOD),
    c("occurred_at", "2026-03-01T14:05:00", "occurred_at", "offset"),
    c("occurred_at", "2026-03-01 14:05:00", "occurred_at", "offset"),
    c("occurred_at", "2026-03-01", "occurred_at"),
    c("occurred_at", "yesterday afternoon", "occurred_at"),
    c("occurred_at", "2026-02-30T14:05:00+00:00", "occurred_at"),
    c("occurred_at", 1772373900, "occurred_at"),
    c("occurred_at", DROP, "occurred_at", "required"),
    # recorded_at: optional, with an offset, not before occurred_at (2026-03-01T14:05:00+00:00)
    c("recorded_at", DROP, GOOD, id="recorded_at absent"),
    c("recorded_at", "2026-03-01T14:05:00+00:00", GOOD, id="recorded_at equal"),
    c("recorded_at", "2026-03-01T15:05:00+01:00", GOOD, id="recorded_at same instant other offset"),
    c("recorded_at", "2026-03-08T09:00:00Z", GOOD, id="recorded_at a week later"),
    c("recorded_at", "2026-03-01T14:04:59+00:00", "recorded_at", "must not precede", id="recorded_at 1s early"),
    c("recorded_at", "2026-03-01T14:30:00+01:00", "recorded_at", "must not precede",
      id="recorded_at later wall clock but earlier instant"),
    c("recorded_at", "2026-03-01T15:00:00", "recorded_at", "offset", id="recorded_at naive"),
    c("recorded_at", "later", "recorded_at"),
    # source
    *[c("source.agency", agency, GOOD) for agency in AGENCIES],
    c("source.agency", "council", "source.agency"),
    c("source.agency", "Police", "source.agency"),
    c("source.agency", "", "source.agency"),
    c("source.agency", DROP, "source.agency", "required"),
    c("source", DROP, "source", "required"),
    c("source", "police", "source"),
    c("source.system", "Mosaic", GOOD),
    c("source.system", DROP, GOOD),
    c("source.system", 5, "source.system"),
    c("source.record_ref", "CASE-884211", GOOD),
    c("source.record_ref", DROP, GOOD),
    c("source.record_ref", 884211, "source.record_ref"),
]

CHILD = [
    c("child.identifiers", [identifier("la_person_id", "LA1"), identifier("upn", UPN)], GOOD),
    c("child.identifiers", [], "child.identifiers", "at least 1"),
    c("child.identifiers", DROP, "child.identifiers", "required"),
    c("child.identifiers", identifier("nhs_number", NHS_NUMBER), "child.identifiers"),
    c("child.identifiers.0", "9434765919", "child.identifiers.0"),
    c("child.identifiers", [identifier("nhs_number", NHS_NUMBER), identifier("nhs_number", "123")],
      "child.identifiers.1.value", id="second identifier bad"),
    c("child", "9434765919", "child"),
    # birth_month: YYYY-MM
    c("child.birth_month", "2011-04", GOOD),
    c("child.birth_month", "2011-12", GOOD),
    c("child.birth_month", "2011-01", GOOD),
    c("child.birth_month", "2011-13", "child.birth_month"),
    c("child.birth_month", "2011-00", "child.birth_month"),
    c("child.birth_month", "2011-4", "child.birth_month"),
    c("child.birth_month", "2011-04-01", "child.birth_month"),
    c("child.birth_month", "04/2011", "child.birth_month"),
    c("child.birth_month", 201104, "child.birth_month"),
    # sex
    *[c("child.sex", sex, GOOD) for sex in "FMXU"],
    c("child.sex", "f", "child.sex"),
    c("child.sex", "female", "child.sex"),
    c("child.sex", "", "child.sex"),
    # bools
    *[c(f"child.{f}", v, GOOD) for f in ("looked_after", "learning_disability") for v in (True, False)],
    *[c(f"child.{f}", v, f"child.{f}") for f in ("looked_after", "learning_disability")
      for v in ("true", "yes", 1, 0)],
]

LOCATION = [
    c("location", {}, GOOD),
    c("location", "CV1 2GN", "location"),
    # postcode
    *[c("location.postcode", pc, GOOD) for pc in
      ("CV1 2GN", "cv12gn", " CV1  2GN ", "SW1A 1AA", "M1 1AE", "B33 8TH", "EC1A 1BB", "W1A 0AX", "DN55 1PT",
       "CR2 6XH", "GIR 0AA")],
    *[c("location.postcode", pc, "location.postcode", "postcode") for pc in
      ("CV1 2G", "CV1 2GNN", "QV1 2GN", "CV1 2CN", "CV1 2GI", "12345", "", "   ", "CV1-2GN", "CVV1 2GN",
       "not a postcode")],
    c("location.postcode", 12345, "location.postcode"),
    # ward
    c("location.ward_code", "E05001219", GOOD),
    c("location.ward_code", "W05000981", GOOD),
    c("location.ward_code", "E0500121", "location.ward_code", "ward"),
    c("location.ward_code", "E050012190", "location.ward_code"),
    c("location.ward_code", "e05001219", "location.ward_code"),
    c("location.ward_code", "E06001219", "location.ward_code"),
    c("location.ward_name", "Foleshill", GOOD),
    c("location.ward_name", "", "location.ward_name"),
    # lat/lon: WGS84 ranges, both or neither
    c("location", {"lat": 52.40768, "lon": -1.51234}, GOOD),
    c("location", {"lat": -90, "lon": -180}, GOOD),
    c("location", {"lat": 90.0, "lon": 180.0}, GOOD),
    c("location", {"lat": 90.0001, "lon": 0.0}, "location.lat"),
    c("location", {"lat": -90.5, "lon": 0.0}, "location.lat"),
    c("location", {"lat": 0.0, "lon": 180.5}, "location.lon"),
    c("location", {"lat": 0.0, "lon": -181}, "location.lon"),
    c("location", {"lat": 52.4}, "location", "together"),
    c("location", {"lon": -1.5}, "location", "together"),
    c("location", {"lat": "52.4", "lon": -1.5}, "location.lat"),
    c("location", {"lat": True, "lon": -1.5}, "location.lat"),
    # premises: 14 categories, name/ref optional
    *[c("location.premises", {"category": cat}, GOOD) for cat in PREMISES],
    c("location.premises", {"category": "home", "name": "12 Acacia Avenue", "ref": "UPRN-1"}, GOOD),
    c("location.premises", {"category": "house"}, "location.premises.category"),
    c("location.premises", {"category": "Home"}, "location.premises.category"),
    c("location.premises", {"name": "Chicken Palace"}, "location.premises.category", "required"),
    c("location.premises", "takeaway", "location.premises"),
    c("location.premises", {"category": "park", "colour": "red"}, "location.premises.colour", "unknown field"),
]

NHS = "nhs_number"
IDENTIFIERS = [
    # nhs_number: 10 digits, modulus 11, spaces allowed
    c("child.identifiers.0", identifier(NHS, NHS_DIGITS), GOOD),
    c("child.identifiers.0", identifier(NHS, NHS_NUMBER), GOOD),
    c("child.identifiers.0", identifier(NHS, "94 34 76 59 19"), GOOD),
    c("child.identifiers.0", identifier(NHS, nhs_number("401023213")), GOOD),
    c("child.identifiers.0", identifier(NHS, "9434765918"), "child.identifiers.0.value", "modulus-11",
      id="nhs wrong check digit"),
    c("child.identifiers.0", identifier(NHS, "943 476 5918"), "child.identifiers.0.value", "modulus-11",
      id="nhs wrong check digit with spaces"),
    c("child.identifiers.0", identifier(NHS, "1000000010"), "child.identifiers.0.value", "modulus-11",
      id="nhs check digit would be 10"),
    c("child.identifiers.0", identifier(NHS, "943476591"), "child.identifiers.0.value", "10 digits",
      id="nhs 9 digits"),
    c("child.identifiers.0", identifier(NHS, "94347659190"), "child.identifiers.0.value", "10 digits",
      id="nhs 11 digits"),
    c("child.identifiers.0", identifier(NHS, "943-476-5919"), "child.identifiers.0.value", "10 digits"),
    c("child.identifiers.0", identifier(NHS, "943476591X"), "child.identifiers.0.value", "10 digits"),
    c("child.identifiers.0", identifier(NHS, ""), "child.identifiers.0.value"),
    c("child.identifiers.0", {"scheme": NHS, "value": 9434765919}, "child.identifiers.0.value", id="nhs as int"),
    # upn: 13 characters with the DfE check letter
    c("child.identifiers.0", identifier("upn", UPN), GOOD, id="upn valid"),
    c("child.identifiers.0", identifier("upn", upn("937200012345")), GOOD, id="upn valid 2"),
    c("child.identifiers.0", identifier("upn", TEMPORARY_UPN), GOOD, id="upn temporary"),
    c("child.identifiers.0", identifier("upn", upn("93720001234Z")), GOOD, id="upn temporary Z"),
    c("child.identifiers.0", identifier("upn", ("A" if UPN[0] != "A" else "B") + UPN[1:]),
      "child.identifiers.0.value", "check letter", id="upn wrong check letter"),
    c("child.identifiers.0", identifier("upn", ("A" if TEMPORARY_UPN[0] != "A" else "B") + TEMPORARY_UPN[1:]),
      "child.identifiers.0.value", "check letter", id="temporary upn wrong check letter"),
    c("child.identifiers.0", identifier("upn", "A" + "82010000100I"), "child.identifiers.0.value",
      id="temporary upn final letter I not in the table"),
    c("child.identifiers.0", identifier("upn", UPN[:-1]), "child.identifiers.0.value", "13", id="upn 12 chars"),
    c("child.identifiers.0", identifier("upn", UPN + "1"), "child.identifiers.0.value", "13", id="upn 14 chars"),
    c("child.identifiers.0", identifier("upn", UPN[:5] + "A" + UPN[6:]), "child.identifiers.0.value",
      id="upn letter in the digits"),
    c("child.identifiers.0", identifier("upn", "1" + UPN[1:]), "child.identifiers.0.value",
      id="upn digit as check letter"),
    # free-text schemes: 1..40 characters after trimming
    *[c("child.identifiers.0", identifier(s, v), GOOD, id=f"{s} {v!r:.20}")
      for s in ("la_person_id", "police_person_id", "health_local_id")
      for v in ("A", "x" * 40, "  LA-1  ", " " + "y" * 40 + " ")],
    *[c("child.identifiers.0", identifier(s, v), "child.identifiers.0.value", "40", id=f"{s} {v!r:.20}")
      for s in ("la_person_id", "police_person_id", "health_local_id")
      for v in ("x" * 41, "   ", "")],
    # scheme
    c("child.identifiers.0", identifier("nhs", NHS_DIGITS), "child.identifiers.0.scheme"),
    c("child.identifiers.0", identifier("NHS_NUMBER", NHS_DIGITS), "child.identifiers.0.scheme"),
    c("child.identifiers.0", {"value": NHS_DIGITS}, "child.identifiers.0.scheme", "required"),
    c("child.identifiers.0", {"scheme": NHS}, "child.identifiers.0.value", "required"),
]

P = "payload"
PAYLOADS = [
    # missing.started
    c("payload.classification", "absent", GOOD),
    c("payload.setting", "home", GOOD),
    c("payload.setting", "education", GOOD),
    *[c("payload.police_risk", r, GOOD) for r in ("no_apparent_risk", "low", "medium", "high")],
    c("payload.police_risk", DROP, GOOD),
    c("payload.episode_ref", DROP, "payload.episode_ref", "required"),
    c("payload.episode_ref", "", "payload.episode_ref"),
    c("payload.episode_ref", "   ", "payload.episode_ref"),
    c("payload.episode_ref", 17, "payload.episode_ref"),
    c("payload.classification", DROP, "payload.classification", "required"),
    c("payload.classification", "missing_from_care", "payload.classification"),
    c("payload.setting", DROP, "payload.setting", "required"),
    c("payload.setting", "school", "payload.setting"),
    c("payload.police_risk", "very_high", "payload.police_risk"),
    c("payload", "EP-1", "payload"),
    c("payload", DROP, "payload", "required"),
    # missing.risk_graded
    *[c("payload.police_risk", r, GOOD, t="missing.risk_graded") for r in ("no_apparent_risk", "low", "medium")],
    c("payload.police_risk", DROP, "payload.police_risk", "required", t="missing.risk_graded"),
    c("payload.police_risk", "HIGH", "payload.police_risk", t="missing.risk_graded"),
    c("payload.episode_ref", DROP, "payload.episode_ref", t="missing.risk_graded"),
    # missing.ended, return_interview.offered
    *[c("payload.episode_ref", DROP, "payload.episode_ref", "required", t=t)
      for t in ("missing.ended", "return_interview.offered", "return_interview.completed",
                "return_interview.declined")],
    *[c("payload.episode_ref", "", "payload.episode_ref", t=t) for t in ("missing.ended", "return_interview.offered")],
    # return_interview.completed
    c("payload.disclosures", DISCLOSURES, GOOD, t="return_interview.completed"),
    c("payload.disclosures", [], GOOD, t="return_interview.completed"),
    c("payload.disclosures", ["cse", "drugs"], "payload.disclosures.1", t="return_interview.completed"),
    c("payload.disclosures", "cse", "payload.disclosures", t="return_interview.completed"),
    c("payload.places", [{"postcode": "CV1 2GN"}, {"premises": {"category": "park"}}], GOOD,
      t="return_interview.completed"),
    c("payload.places", [{"postcode": "CV1 2GN"}, {"postcode": "nowhere"}], "payload.places.1.postcode",
      t="return_interview.completed"),
    c("payload.places", [{"lat": 52.4}], "payload.places.0", "together", t="return_interview.completed"),
    c("payload.places", {"postcode": "CV1 2GN"}, "payload.places", t="return_interview.completed"),
    # return_interview.declined
    c("payload.reason", "Did not want to talk", GOOD, t="return_interview.declined"),
    c("payload.reason", 3, "payload.reason", t="return_interview.declined"),
    # cse.risk_assessed
    *[c("payload.level", lv, GOOD, t="cse.risk_assessed") for lv in ("none", "low", "medium", "high")],
    c("payload.level", DROP, "payload.level", "required", t="cse.risk_assessed"),
    c("payload.level", "very_high", "payload.level", t="cse.risk_assessed"),
    c("payload.level", None, "payload.level", t="cse.risk_assessed"),
    c("payload.tool", "Barnardo's toolkit", GOOD, t="cse.risk_assessed"),
    c("payload.tool", 1, "payload.tool", t="cse.risk_assessed"),
    c("payload.indicators", ["gifts", "older boyfriend"], GOOD, t="cse.risk_assessed"),
    c("payload.indicators", ["gifts", 2], "payload.indicators.1", t="cse.risk_assessed"),
    c("payload.indicators", "gifts", "payload.indicators", t="cse.risk_assessed"),
    # da.incident
    *[c(f"payload.{f}", DROP, f"payload.{f}", "required", t="da.incident")
      for f in ("incident_ref", "child_present", "marac_referred")],
    c("payload.child_present", False, GOOD, t="da.incident"),
    c("payload.child_present", "true", "payload.child_present", t="da.incident"),
    c("payload.marac_referred", 0, "payload.marac_referred", t="da.incident"),
    *[c("payload.dash_score", s, GOOD, t="da.incident") for s in (0, 13, 14, 24)],
    c("payload.dash_score", DROP, GOOD, t="da.incident"),
    c("payload.dash_score", 25, "payload.dash_score", "24", t="da.incident"),
    c("payload.dash_score", -1, "payload.dash_score", "0", t="da.incident"),
    c("payload.dash_score", "12", "payload.dash_score", t="da.incident"),
    c("payload.dash_score", 12.5, "payload.dash_score", t="da.incident"),
    c("payload.dash_score", True, "payload.dash_score", t="da.incident"),
    *[c("payload.dash_risk", r, GOOD, t="da.incident") for r in ("standard", "medium", "high")],
    c("payload.dash_risk", "low", "payload.dash_risk", t="da.incident"),
    c("payload.encompass_notified_at", "2026-03-02T08:30:00+00:00", GOOD, t="da.incident"),
    c("payload.encompass_notified_at", "2026-03-02T08:30:00Z", GOOD, t="da.incident"),
    c("payload.encompass_notified_at", "2026-03-02T08:30:00", "payload.encompass_notified_at", "offset",
      t="da.incident"),
    c("payload.encompass_notified_at", "tomorrow", "payload.encompass_notified_at", t="da.incident"),
    c("payload.encompass_notified_at", True, "payload.encompass_notified_at", t="da.incident"),
    # cp_plan.started
    *[c("payload.category", cat, GOOD, t="cp_plan.started") for cat in ("NEG", "PHY", "SAB", "EMO", "MUL")],
    *[c("payload.category", cat, "payload.category", t="cp_plan.started") for cat in ("neg", "NEGLECT", "CSE", "")],
    *[c(f"payload.{f}", DROP, f"payload.{f}", "required", t="cp_plan.started")
      for f in ("plan_ref", "category", "previous_plans")],
    c("payload.previous_plans", 0, GOOD, t="cp_plan.started"),
    c("payload.previous_plans", 4, GOOD, t="cp_plan.started"),
    c("payload.previous_plans", -1, "payload.previous_plans", "0", t="cp_plan.started"),
    c("payload.previous_plans", "1", "payload.previous_plans", t="cp_plan.started"),
    c("payload.previous_plans", 1.5, "payload.previous_plans", t="cp_plan.started"),
    # cp_plan.category_changed
    *[c("payload.category", cat, GOOD, t="cp_plan.category_changed") for cat in ("NEG", "PHY", "SAB", "EMO", "MUL")],
    c("payload.category", "XYZ", "payload.category", t="cp_plan.category_changed"),
    c("payload.category", DROP, "payload.category", "required", t="cp_plan.category_changed"),
    c("payload.plan_ref", DROP, "payload.plan_ref", "required", t="cp_plan.category_changed"),
    # cp_plan.ended
    c("payload.reason", "Plan ended", GOOD, t="cp_plan.ended"),
    c("payload.reason", DROP, GOOD, t="cp_plan.ended"),
    c("payload.reason", ["x"], "payload.reason", t="cp_plan.ended"),
    c("payload.plan_ref", DROP, "payload.plan_ref", "required", t="cp_plan.ended"),
    c("payload.plan_ref", "", "payload.plan_ref", t="cp_plan.ended"),
    # identity.linked: 2..n identifiers
    c("payload.identifiers", [identifier(NHS, NHS_NUMBER), identifier("upn", UPN)], GOOD, t="identity.linked"),
    c("payload.identifiers", [identifier(NHS, NHS_NUMBER), identifier("upn", UPN), identifier("la_person_id", "L")],
      GOOD, t="identity.linked"),
    c("payload.identifiers", [identifier(NHS, NHS_NUMBER)], "payload.identifiers", "at least 2", t="identity.linked"),
    c("payload.identifiers", [], "payload.identifiers", "at least 2", t="identity.linked"),
    c("payload.identifiers", DROP, "payload.identifiers", "required", t="identity.linked"),
    c("payload.identifiers", [identifier(NHS, NHS_NUMBER), identifier("upn", "A123")], "payload.identifiers.1.value",
      t="identity.linked"),
    c("payload.identifiers", [identifier(NHS, NHS_NUMBER), identifier("email", "a@b")],
      "payload.identifiers.1.scheme", t="identity.linked"),
]


@pytest.mark.parametrize(("event_type", "path", "value", "loc", "msg"), ENVELOPE + CHILD + LOCATION + IDENTIFIERS
                         + PAYLOADS)
def test_field_rule(event_type: str, path: str, value: Any, loc: str | None, msg: str | None) -> None:
    doc = apply(minimal(event_type), path, value)
    if loc is None:
        event = assert_valid(doc)
        assert event.event_type == event_type
    else:
        assert_rejected(doc, loc, msg)


# ----------------------------------------------------------------------------------------------
# Rules that span fields or types.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", CHILD_EVENT_TYPES)
def test_child_is_required_on_every_type_but_identity_linked(event_type: str) -> None:
    assert_rejected(drop(minimal(event_type), "child"), "child", "required")


def test_child_is_forbidden_on_identity_linked() -> None:
    doc = minimal("identity.linked")
    doc["child"] = minimal("missing.ended")["child"]
    assert_rejected(doc, "child", "unknown field")


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_is_accepted_by_name(event_type: str) -> None:
    event = assert_valid(minimal(event_type))
    assert type(event) is EVENT_CLASSES[event_type]


def test_unknown_event_type_message_lists_the_types() -> None:
    [error] = assert_rejected(mutate(minimal(MS), "event_type", "missing.begun"), "event_type")
    for event_type in EVENT_TYPES:
        assert event_type in error.msg


def test_payload_of_another_type_is_rejected() -> None:
    doc = mutate(minimal("missing.ended"), "payload", minimal("da.incident")["payload"])
    event, errors = parse(doc)
    assert event is None
    assert {e.loc for e in errors} == {"payload.episode_ref", "payload.incident_ref", "payload.child_present",
                                       "payload.marac_referred"}


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("cv12gn", "CV1 2GN"), ("CV12GN", "CV1 2GN"), (" cv1 2gn ", "CV1 2GN"), ("sw1a1aa", "SW1A 1AA"),
     ("m11ae", "M1 1AE"), ("gir0aa", "GIR 0AA")],
)
def test_postcode_is_normalised(raw: str, normalised: str) -> None:
    event = assert_valid(mutate(minimal(MS), "location.postcode", raw))
    assert event.location.postcode == normalised


def test_refs_are_trimmed() -> None:
    event = assert_valid(mutate(minimal(MS), "payload.episode_ref", "  EP-9 "))
    assert event.payload.episode_ref == "EP-9"


@pytest.mark.parametrize(
    ("scheme", "written", "normalised"),
    [(NHS, "943 476 5919", NHS_DIGITS), (NHS, " 9434765919 ", NHS_DIGITS), ("la_person_id", "  LA-1 ", "LA-1"),
     ("police_person_id", "P1", "P1"), ("health_local_id", "\tH-7 ", "H-7")],
)
def test_identifier_normalised_value(scheme: str, written: str, normalised: str) -> None:
    event = assert_valid(mutate(minimal(MS), "child.identifiers.0", identifier(scheme, written)))
    assert event.child.identifiers[0].normalised == normalised


def test_nhs_and_upn_helpers() -> None:
    assert nhs_number_ok(NHS_DIGITS)
    assert not nhs_number_ok("9434765918")
    assert not nhs_number_ok("1000000010")  # check digit 10: never issued
    assert not nhs_number_ok("943476591")
    assert nhs_number("943476591") == NHS_DIGITS
    assert UPN[0] == upn_check_letter(UPN[1:])
    assert len(UPN) == len(TEMPORARY_UPN) == 13
    assert TEMPORARY_UPN[-1].isalpha()


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_datetimes_keep_their_instant(event_type: str) -> None:
    doc = mutate(minimal(event_type), "occurred_at", "2026-06-01T09:00:00+01:00")
    event = assert_valid(doc)
    assert event.occurred_at.utcoffset() is not None
    assert event.occurred_at.isoformat() == "2026-06-01T09:00:00+01:00"


# ----------------------------------------------------------------------------------------------
# Unknown fields are rejected anywhere, with their path.
# ----------------------------------------------------------------------------------------------

UNKNOWN_FIELD_PATHS = [
    (MS, "priority"),
    (MS, "source.team"),
    (MS, "child.name"),
    (MS, "child.date_of_birth"),
    (MS, "child.identifiers.0.issuer"),
    (MS, "location.what3words"),
    (MS, "location.premises.colour"),
    ("return_interview.completed", "payload.places.0.notes"),
    ("identity.linked", "payload.identifiers.1.issuer"),
    *[(t, "payload.note") for t in EVENT_TYPES],
]


@pytest.mark.parametrize(("event_type", "path"), UNKNOWN_FIELD_PATHS)
def test_unknown_field_is_rejected(event_type: str, path: str) -> None:
    doc = full(event_type)
    if path.startswith("location.premises"):
        doc = mutate(doc, "location.premises", {"category": "park"})
    doc = mutate(doc, path, "x")
    errors = assert_rejected(doc, path, "unknown field")
    assert "contract" in errors[0].msg


# ----------------------------------------------------------------------------------------------
# Messages that are not an event object: errors, never an exception.
# ----------------------------------------------------------------------------------------------

NOT_AN_OBJECT = [b"[1]", b'"x"', b"nope", b"", b"   ", b"null", b"1", b"true", b"{", b'{"event_type": ',
                 b"\xff\xfe\x00", b"[" * 5000 + b"]" * 5000, b"[" * 200_000, b'{"a":' * 50_000]


@pytest.mark.parametrize("raw", NOT_AN_OBJECT, ids=lambda r: repr(r[:12]))
def test_not_a_json_object_gives_errors_never_an_exception(raw: bytes) -> None:
    for message in (raw, raw.decode("utf-8", errors="replace")):
        event, errors = parse_event(message)
        assert event is None
        assert errors
        for error in errors:
            assert error.loc == "(message)"
            assert_readable(error.msg)


def test_empty_object_says_event_type_is_required() -> None:
    assert_rejected({}, "event_type", "required")


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_all_errors_are_reported_at_once(event_type: str) -> None:
    doc = mutate(minimal(event_type), "schema_version", 3)
    doc = mutate(doc, "source.agency", "council")
    doc = mutate(doc, "occurred_at", "2026-03-01T14:05:00")
    event, errors = parse(doc)
    assert event is None
    assert [e.loc for e in errors] == ["schema_version", "occurred_at", "source.agency"]


def test_str_and_bytes_parse_alike() -> None:
    doc = full("da.incident")
    from_bytes, _ = parse_event(dumps(doc))
    from_str, _ = parse_event(json.dumps(doc))
    assert from_bytes is not None
    assert from_bytes == from_str


# ----------------------------------------------------------------------------------------------
# Contract bugs these tests found, kept as regressions.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, 1.0])
def test_schema_version_must_be_the_int_1(value: Any) -> None:
    assert_rejected(mutate(minimal(MS), "schema_version", value), "schema_version")


@pytest.mark.parametrize(
    ("path", "value", "loc"),
    [
        ("child.identifiers.0", identifier(NHS, "\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669"),
         "child.identifiers.0.value"),
        ("child.identifiers.0", identifier(NHS, "".join(chr(0xFF10 + int(d)) for d in NHS_DIGITS)),
         "child.identifiers.0.value"),
        ("child.identifiers.0", identifier("upn", UPN[0] + "".join(chr(0xFF10 + int(d)) for d in UPN[1:12]) + UPN[12]),
         "child.identifiers.0.value"),
        ("child.birth_month", "\uff12\uff10\uff11\uff11-04", "child.birth_month"),
        ("location.ward_code", "E05\uff10\uff10\uff11\uff12\uff11\uff19", "location.ward_code"),
    ],
    ids=["nhs arabic-indic", "nhs fullwidth", "upn fullwidth", "birth_month fullwidth", "ward_code fullwidth"],
)
def test_only_ascii_digits_count_as_digits(path: str, value: Any, loc: str) -> None:
    assert_rejected(mutate(minimal(MS), path, value), loc)


# ----------------------------------------------------------------------------------------------
# v1 clarifications: bounds (found by fuzzing). Each bound with its last good and first bad value.


@pytest.mark.parametrize("value", [0, 1658739324, "-1", "1658739324", "2026-03-01", "yesterday", True])
def test_a_datetime_is_iso_8601_text_never_a_number(value: Any) -> None:
    assert_rejected(mutate(minimal("missing.started"), "occurred_at", value), "occurred_at", "ISO 8601")
    doc = mutate(minimal("da.incident"), "payload.encompass_notified_at", value)
    assert_rejected(doc, "payload.encompass_notified_at", "ISO 8601")


def test_occurred_at_lies_between_1990_and_one_day_after_validation() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    at = lambda moment: dumps(mutate(minimal("missing.started"), "occurred_at", moment))  # noqa: E731
    assert parse_event(at("1990-01-01T00:00:00Z"), now=now)[1] == []
    assert parse_event(at((now + timedelta(days=1)).isoformat()), now=now)[1] == []
    for bad in ("1989-12-31T23:59:59Z", (now + timedelta(days=1, seconds=1)).isoformat(),
                "9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+14:00"):
        event, errors = parse_event(at(bad), now=now)
        assert event is None and [e.loc for e in errors] == ["occurred_at"], (bad, errors)
        assert_readable(errors[0].msg)


def test_birth_month_from_1990_to_nine_months_after_occurred_at() -> None:
    doc = mutate(minimal("missing.started"), "occurred_at", "2026-03-05T10:00:00Z")
    for good in ("1990-01", "2026-12"):
        assert_valid(mutate(doc, "child.birth_month", good))
    for bad in ("1989-12", "2027-01"):
        assert_rejected(mutate(doc, "child.birth_month", bad), "child", "birth_month")


def test_previous_plans_at_most_50() -> None:
    assert_valid(mutate(minimal("cp_plan.started"), "payload.previous_plans", 50))
    assert_rejected(mutate(minimal("cp_plan.started"), "payload.previous_plans", 51), "payload.previous_plans")
    assert_rejected(mutate(minimal("cp_plan.started"), "payload.previous_plans", 70000), "payload.previous_plans")


def _ids(count: int) -> list[dict[str, str]]:
    return [identifier("la_person_id", f"LA-{n:05d}") for n in range(count)]


@pytest.mark.parametrize(("event_type", "path", "item", "limit"), [
    ("missing.started", "child.identifiers", None, 20),
    ("identity.linked", "payload.identifiers", None, 20),
    ("return_interview.completed", "payload.places", {"ward_code": "E05001219"}, 20),
    ("return_interview.completed", "payload.disclosures", "cse", 12),
    ("cse.risk_assessed", "payload.indicators", "x", 30),
])
def test_lists_have_upper_bounds(event_type: str, path: str, item: Any, limit: int) -> None:
    def items(count: int) -> list[Any]:
        return _ids(count) if item is None else [item] * count

    assert_valid(mutate(minimal(event_type), path, items(limit)))
    assert_rejected(mutate(minimal(event_type), path, items(limit + 1)), path, "at most")


@pytest.mark.parametrize("path", ["payload.reason", "child.identifiers.0.value", "location.premises.name"])
def test_any_string_at_most_200_characters(path: str) -> None:
    event_type = "cp_plan.ended" if path == "payload.reason" else "missing.started"
    doc = mutate(minimal(event_type), "child.identifiers", [identifier("la_person_id", "LA-1")])
    doc = mutate(doc, "location", {"premises": {"category": "hotel", "name": "Hotel"}})
    longest = " " * 160 + "x" * 40 if path.endswith("value") else "x" * 200  # an id is 1..40 once trimmed
    assert_valid(mutate(doc, path, longest))
    assert_rejected(mutate(doc, path, "x" * 201), path, "at most 200")


def test_a_message_over_1_mib_is_rejected_before_it_is_read() -> None:
    doc = mutate(minimal("missing.started"), "source.system", "x")
    raw = dumps(doc)
    padded = raw[:-1] + b" " * (1024 * 1024 - len(raw)) + b"}"
    assert len(padded) == 1024 * 1024 and parse_event(padded)[1] == []
    event, errors = parse_event(padded[:-1] + b" }")
    assert event is None and [e.loc for e in errors] == ["(message)"] and "1 MiB" in errors[0].msg


def test_at_most_100_errors_are_reported_and_the_last_counts_the_rest() -> None:
    doc = minimal("missing.started")
    raw = dumps({**doc, **{f"field{n}": n for n in range(20_000)}})
    event, errors = parse_event(raw)
    assert event is None and len(errors) == 100
    assert errors[-1].loc == "(message)" and errors[-1].msg == "19901 more errors not listed"


@pytest.mark.parametrize("raw", [
    b'{"event_type": "missing.started", "event_type": "missing.ended"}',
    b'{"a": {"Jane Smith": 1, "Jane Smith": 2}}',
])
def test_duplicate_keys_are_an_error(raw: bytes) -> None:
    event, errors = parse_event(raw)
    assert event is None and len(errors) == 1 and "duplicate key" in errors[0].msg
    assert errors[0].loc in {"event_type", "<unknown field>"}  # a key outside the contract is never echoed


def test_duplicate_keys_in_a_valid_event_reject_it() -> None:
    raw = dumps(minimal("missing.started"))
    assert parse_event(raw)[1] == []
    assert parse_event(raw[:-1] + b', "schema_version": 1}')[0] is None


@pytest.mark.parametrize("raw", [b'{"event_type":"\xed\xa0\x80x"}', b'{"a": "\xff"}', b"\xc3"])
def test_invalid_utf8_makes_the_message_invalid_never_a_crash(raw: bytes) -> None:
    event, errors = parse_event(raw)
    assert event is None and [e.loc for e in errors] == ["(message)"] and "UTF-8" in errors[0].msg


# ----------------------------------------------------------------------------------------------
# v1.1: the CMOG's own records


def test_action_due_at_within_five_years_of_occurred_at() -> None:
    doc = mutate(minimal("cmog.action.set"), "occurred_at", "2026-03-01T10:00:00Z")
    assert_valid(mutate(doc, "payload.due_at", "2031-02-28T10:00:00Z"))
    assert_rejected(mutate(doc, "payload.due_at", "2031-03-02T10:00:00Z"), "payload", "five years")
    assert_rejected(mutate(doc, "payload.due_at", 1772000000), "payload.due_at", "ISO 8601")
    assert_rejected(mutate(doc, "payload.due_at", "2026-03-15T17:00:00"), "payload.due_at", "offset")


@pytest.mark.parametrize("event_type", ["cmog.listed", "cmog.reviewed"])
def test_alert_ids_are_alert_ids(event_type: str) -> None:
    assert_valid(mutate(minimal(event_type), "payload.alert_ids", ["0" * 32]))
    assert_rejected(mutate(minimal(event_type), "payload.alert_ids", ["Jane Smith"]), "payload.alert_ids.0")
    assert_rejected(mutate(minimal(event_type), "payload.alert_ids", ["0" * 32] * 101), "payload.alert_ids")


@pytest.mark.parametrize(("event_type", "path", "bad"), [
    ("cmog.listed", "payload.reason", "a strategy meeting"),
    ("cmog.reviewed", "payload.decision", "escalate"),
    ("cmog.reviewed", "payload.risk", "none"),
    ("cmog.action.set", "payload.owner_agency", "Sgt Smith"),
    ("cmog.action.set", "payload.kind", "call mum"),
    ("cmog.action.updated", "payload.status", "open"),
])
def test_cmog_enums_are_exact(event_type: str, path: str, bad: str) -> None:
    assert_rejected(mutate(minimal(event_type), path, bad), path)
