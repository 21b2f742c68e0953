"""Builders of valid contract-v1 events (EVENTS.md) as plain dicts, and helpers to break them.

Every builder returns a fresh dict that `parse_event(json.dumps(doc))` accepts. `minimal(t)` has only
the required fields of event type `t`; `full(t)` has every optional field too. Tests break a valid
event one field at a time with `mutate(doc, "a.b.0.c", value)` and `drop(doc, "a.b")`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from models.events import nhs_check_digit, upn_check_letter

EVENT_ID = "6f1c1c2e-8a3b-4c55-9c1e-0e6f7c2b9a11"
OCCURRED_AT = "2026-03-01T14:05:00+00:00"
RECORDED_AT = "2026-03-01T15:30:00+00:00"

# Valid NHS numbers (modulus 11 holds). The first is the NHS's own published test number.
NHS_NUMBER = "943 476 5919"
NHS_DIGITS = "9434765919"


def nhs_number(first_nine: str) -> str:
    """A valid 10-digit NHS number starting with `first_nine`."""
    check = nhs_check_digit(first_nine)
    if check is None:
        raise ValueError(f"{first_nine} has no valid check digit")
    return f"{first_nine}{check}"


def upn(body: str) -> str:
    """A DfE UPN: the check letter, then the 12 characters of `body` (11 digits + a digit or letter)."""
    return upn_check_letter(body) + body


UPN = upn("820100001001")
TEMPORARY_UPN = upn("82010000100A")  # a temporary UPN ends in a letter


def identifier(scheme: str, value: str) -> dict[str, str]:
    return {"scheme": scheme, "value": value}


def child(*identifiers: dict[str, str], **fields: Any) -> dict[str, Any]:
    ids = list(identifiers) or [identifier("nhs_number", NHS_NUMBER)]
    return {"identifiers": ids, **fields}


def full_child() -> dict[str, Any]:
    return child(
        identifier("nhs_number", NHS_NUMBER),
        identifier("upn", UPN),
        identifier("la_person_id", "LA-000123"),
        birth_month="2011-04",
        sex="F",
        looked_after=True,
        learning_disability=False,
    )


def location(**fields: Any) -> dict[str, Any]:
    return dict(fields)


def full_location() -> dict[str, Any]:
    return {
        "postcode": "CV1 2GN",
        "ward_code": "E05001219",
        "ward_name": "St Michael's",
        "lat": 52.40768,
        "lon": -1.51234,
        "premises": {"category": "takeaway", "name": "Chicken Palace", "ref": "PREM-17"},
    }


def envelope(event_type: str, payload: dict[str, Any], *, with_child: bool = True, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": EVENT_ID,
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": OCCURRED_AT,
        "source": {"agency": "police"},
    }
    if with_child:
        doc["child"] = child()
    doc["payload"] = payload
    doc.update(fields)
    return doc


# --- minimal payloads (required fields only) ---------------------------------------------------

MINIMAL_PAYLOADS: dict[str, dict[str, Any]] = {
    "missing.started": {"episode_ref": "EP-1", "classification": "missing", "setting": "care"},
    "missing.risk_graded": {"episode_ref": "EP-1", "police_risk": "high"},
    "missing.ended": {"episode_ref": "EP-1"},
    "return_interview.offered": {"episode_ref": "EP-1"},
    "return_interview.completed": {"episode_ref": "EP-1"},
    "return_interview.declined": {"episode_ref": "EP-1"},
    "cse.risk_assessed": {"level": "medium"},
    "da.incident": {"incident_ref": "INC-1", "child_present": True, "marac_referred": False},
    "cp_plan.started": {"plan_ref": "CP-1", "category": "NEG", "previous_plans": 0},
    "cp_plan.category_changed": {"plan_ref": "CP-1", "category": "EMO"},
    "cp_plan.ended": {"plan_ref": "CP-1"},
    "cmog.listed": {"reason": "alert"},
    "cmog.reviewed": {"meeting_ref": "CMOG-2026-03", "decision": "keep", "risk": "medium"},
    "cmog.action.set": {"action_ref": "ACT-1", "owner_agency": "police", "due_at": "2026-03-15T17:00:00+00:00",
                        "kind": "disruption"},
    "cmog.action.updated": {"action_ref": "ACT-1", "status": "done"},
    "identity.linked": {
        "identifiers": [identifier("nhs_number", NHS_NUMBER), identifier("la_person_id", "LA-000123")]
    },
}

# --- every optional payload field present ------------------------------------------------------

FULL_PAYLOADS: dict[str, dict[str, Any]] = {
    "missing.started": {"episode_ref": "EP-1", "classification": "absent", "setting": "home", "police_risk": "low"},
    "missing.risk_graded": {"episode_ref": "EP-1", "police_risk": "medium"},
    "missing.ended": {"episode_ref": "EP-1"},
    "return_interview.offered": {"episode_ref": "EP-1"},
    "return_interview.completed": {
        "episode_ref": "EP-1",
        "disclosures": ["cse", "county_lines"],
        "places": [full_location(), {"postcode": "CV6 5AA", "premises": {"category": "park"}}],
    },
    "return_interview.declined": {"episode_ref": "EP-1", "reason": "Young person did not want to talk today"},
    "cse.risk_assessed": {"level": "high", "tool": "CSE screening tool v3", "indicators": ["older boyfriend", "gifts"]},
    "da.incident": {
        "incident_ref": "INC-1",
        "child_present": True,
        "marac_referred": False,
        "dash_score": 15,
        "dash_risk": "high",
        "encompass_notified_at": "2026-03-02T08:30:00+00:00",
    },
    "cp_plan.started": {"plan_ref": "CP-1", "category": "MUL", "previous_plans": 2},
    "cp_plan.category_changed": {"plan_ref": "CP-1", "category": "SAB"},
    "cp_plan.ended": {"plan_ref": "CP-1", "reason": "Step-down to child in need"},
    "cmog.listed": {"reason": "partner_concern", "alert_ids": ["0123456789abcdef0123456789abcdef"]},
    "cmog.reviewed": {"meeting_ref": "CMOG-2026-03", "decision": "step_down", "risk": "low",
                      "alert_ids": ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]},
    "cmog.action.set": {"action_ref": "ACT-1", "owner_agency": "education", "due_at": "2026-03-15T17:00:00+00:00",
                        "kind": "safety_plan"},
    "cmog.action.updated": {"action_ref": "ACT-1", "status": "in_progress"},
    "identity.linked": {
        "identifiers": [
            identifier("nhs_number", NHS_NUMBER),
            identifier("upn", UPN),
            identifier("la_person_id", "LA-000123"),
            identifier("police_person_id", "PNC-77"),
            identifier("health_local_id", "RKB-991"),
        ]
    },
}

EVENT_TYPES: tuple[str, ...] = tuple(MINIMAL_PAYLOADS)
CHILD_EVENT_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != "identity.linked")


def minimal(event_type: str) -> dict[str, Any]:
    """A valid event of `event_type` with only its required fields."""
    payload = copy.deepcopy(MINIMAL_PAYLOADS[event_type])
    return envelope(event_type, payload, with_child=event_type != "identity.linked")


def full(event_type: str) -> dict[str, Any]:
    """A valid event of `event_type` with every optional field present."""
    doc = envelope(
        event_type,
        copy.deepcopy(FULL_PAYLOADS[event_type]),
        with_child=event_type != "identity.linked",
        recorded_at=RECORDED_AT,
        location=full_location(),
    )
    doc["source"] = {"agency": "childrens_social_care", "system": "Mosaic", "record_ref": "CASE-884211"}
    if event_type != "identity.linked":
        doc["child"] = full_child()
    return doc


# One named builder per event type, for readability in tests.
def missing_started() -> dict[str, Any]:
    return minimal("missing.started")


def missing_risk_graded() -> dict[str, Any]:
    return minimal("missing.risk_graded")


def missing_ended() -> dict[str, Any]:
    return minimal("missing.ended")


def interview_offered() -> dict[str, Any]:
    return minimal("return_interview.offered")


def interview_completed() -> dict[str, Any]:
    return minimal("return_interview.completed")


def interview_declined() -> dict[str, Any]:
    return minimal("return_interview.declined")


def cse_risk_assessed() -> dict[str, Any]:
    return minimal("cse.risk_assessed")


def da_incident() -> dict[str, Any]:
    return minimal("da.incident")


def cp_plan_started() -> dict[str, Any]:
    return minimal("cp_plan.started")


def cp_plan_category_changed() -> dict[str, Any]:
    return minimal("cp_plan.category_changed")


def cp_plan_ended() -> dict[str, Any]:
    return minimal("cp_plan.ended")


def cmog_listed() -> dict[str, Any]:
    return minimal("cmog.listed")


def cmog_reviewed() -> dict[str, Any]:
    return minimal("cmog.reviewed")


def cmog_action_set() -> dict[str, Any]:
    return minimal("cmog.action.set")


def cmog_action_updated() -> dict[str, Any]:
    return minimal("cmog.action.updated")


def identity_linked() -> dict[str, Any]:
    return minimal("identity.linked")


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "missing.started": missing_started,
    "missing.risk_graded": missing_risk_graded,
    "missing.ended": missing_ended,
    "return_interview.offered": interview_offered,
    "return_interview.completed": interview_completed,
    "return_interview.declined": interview_declined,
    "cse.risk_assessed": cse_risk_assessed,
    "da.incident": da_incident,
    "cp_plan.started": cp_plan_started,
    "cp_plan.category_changed": cp_plan_category_changed,
    "cp_plan.ended": cp_plan_ended,
    "cmog.listed": cmog_listed,
    "cmog.reviewed": cmog_reviewed,
    "cmog.action.set": cmog_action_set,
    "cmog.action.updated": cmog_action_updated,
    "identity.linked": identity_linked,
}


# --- breaking a valid event --------------------------------------------------------------------


def _walk(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `doc` with the field at dotted `path` set (list items by index: "a.identifiers.0.value").

    Missing intermediate objects are created, so `mutate(doc, "location.lat", 1.0)` works on an event
    without a location.
    """
    out = copy.deepcopy(doc)
    parts = path.split(".")
    node: Any = out
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


def drop(doc: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of `doc` without the field at dotted `path` (a field already absent stays absent)."""
    out = copy.deepcopy(doc)
    parts = path.split(".")
    parent = _walk(out, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        parent.pop(last, None)
    return out


def dumps(doc: Any) -> bytes:
    """One inbound message: the document as UTF-8 JSON bytes."""
    return json.dumps(doc).encode("utf-8")
