"""Malformed messages: each fault breaks one contract rule that a real partner system gets wrong.

`break_message` picks one that applies to a message and returns the broken bytes; the ingest stage
must dead-letter every one of them with its reason.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from models.events import UPN_LETTERS
from simulator.city import stamp

Doc = dict[str, Any]
HOUR = timedelta(hours=1)


def dump(doc: Doc) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _identifier_docs(doc: Doc) -> list[Doc]:
    return list((doc.get("child") or {}).get("identifiers") or doc["payload"].get("identifiers") or [])


def _bad_nhs_check_digit(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    for ident in _identifier_docs(doc):
        if ident["scheme"] == "nhs_number":
            digits = ident["value"].replace(" ", "")
            ident["value"] = digits[:9] + str((int(digits[9]) + rng.randint(1, 9)) % 10)
            return True
    return False


def _bad_upn_check_letter(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    for ident in _identifier_docs(doc):
        if ident["scheme"] == "upn":
            ident["value"] = rng.choice([c for c in UPN_LETTERS if c != ident["value"][0]]) + ident["value"][1:]
            return True
    return False


def _unknown_enum_value(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    payload = doc["payload"]
    options: list[tuple[Doc, str, str]] = [(doc["source"], "agency", "ambulance_service"),
                                           (doc, "event_type", "missing.reported")]
    for key, bad in (("police_risk", "very_high"), ("classification", "runaway"), ("setting", "hospital"),
                     ("level", "critical"), ("category", "CSE"), ("dash_risk", "severe")):
        if key in payload:
            options.append((payload, key, bad))
    if "sex" in (doc.get("child") or {}):
        options.append((doc["child"], "sex", "Female"))
    target, key, bad = rng.choice(options)
    target[key] = bad
    return True


def _naive_datetime(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    key = rng.choice([k for k in ("occurred_at", "recorded_at") if k in doc])
    doc[key] = doc[key][:19]
    return True


def _recorded_before_occurred(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    occurred = datetime.fromisoformat(doc["occurred_at"])
    doc["recorded_at"] = stamp(occurred - rng.uniform(1, 48) * HOUR, zone)
    return True


def _dash_score_out_of_range(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    if doc["event_type"] != "da.incident":
        return False
    doc["payload"]["dash_score"] = rng.choice((25, 27, 30, -1, 99))
    return True


def _missing_required_field(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    required_payload = [k for k in ("episode_ref", "plan_ref", "incident_ref", "level", "category",
                                    "classification", "child_present") if k in doc["payload"]]
    options = ["event_id", "occurred_at", "source", "schema_version", "payload"]
    options += [f"payload.{k}" for k in required_payload] + (["child"] if "child" in doc else [])
    choice = rng.choice(options)
    if choice.startswith("payload."):
        del doc["payload"][choice.removeprefix("payload.")]
    else:
        del doc[choice]
    return True


def _unknown_field(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    target, key, value = rng.choice([
        (doc, "occured_at", doc["occurred_at"]),  # a typo beside the real field
        (doc, "priority", "urgent"),
        (doc["source"], "team", "MASH"),
        (doc["payload"], "notes", "see case file"),
        (doc["payload"], "riskLevel", "medium"),
    ])
    target[key] = value
    return True


def _bad_postcode(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    location = doc.get("location")
    if not location or "postcode" not in location:
        return False
    location["postcode"] = rng.choice(("CV1 2CI", "CVX 1AA", "CV1 2G", "12345"))
    return True


def _bad_ward_code(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    location = doc.get("location")
    if not location:
        return False
    location["ward_code"] = rng.choice(("E0500122", "Foleshill", "05001222"))
    return True


def _lat_without_lon(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    location = doc.get("location")
    if not location or "lon" not in location:
        return False
    del location["lon"]
    return True


def _wrong_schema_version(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    doc["schema_version"] = rng.choice((2, 0, "1.0"))
    return True


def _bad_event_id(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    doc["event_id"] = f"EVT-{rng.randrange(10**8)}"
    return True


def _bad_birth_month(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    child = doc.get("child")
    if not child or "birth_month" not in child:
        return False
    year, month = child["birth_month"].split("-")
    child["birth_month"] = rng.choice((f"{year}-13", f"{month}/{year}", year))
    return True


def _single_linked_identifier(doc: Doc, rng: random.Random, zone: ZoneInfo) -> bool:
    if doc["event_type"] != "identity.linked":
        return False
    doc["payload"]["identifiers"] = doc["payload"]["identifiers"][:1]
    return True


# name -> (relative weight, break(doc, rng, zone) -> whether it applied to this doc)
FAULTS: dict[str, tuple[float, Callable[[Doc, random.Random, ZoneInfo], bool]]] = {
    "bad_nhs_check_digit": (12, _bad_nhs_check_digit),
    "bad_upn_check_letter": (5, _bad_upn_check_letter),
    "unknown_enum_value": (12, _unknown_enum_value),
    "naive_datetime": (10, _naive_datetime),
    "recorded_before_occurred": (8, _recorded_before_occurred),
    "dash_score_out_of_range": (6, _dash_score_out_of_range),
    "missing_required_field": (10, _missing_required_field),
    "unknown_field": (8, _unknown_field),
    "bad_postcode": (5, _bad_postcode),
    "bad_ward_code": (3, _bad_ward_code),
    "lat_without_lon": (3, _lat_without_lon),
    "wrong_schema_version": (3, _wrong_schema_version),
    "bad_event_id": (3, _bad_event_id),
    "bad_birth_month": (3, _bad_birth_month),
    "single_linked_identifier": (2, _single_linked_identifier),
    "not_json": (7, lambda doc, rng, zone: True),
}


def break_message(doc: Doc, rng: random.Random, zone: ZoneInfo) -> tuple[str, bytes]:
    """(fault, bytes) for a copy of `doc` broken in one way that applies to it."""
    names = list(FAULTS)
    weights = [FAULTS[name][0] for name in names]
    while True:
        name = rng.choices(names, weights=weights)[0]
        if name == "not_json":
            return name, _not_json(doc, rng)
        broken = copy.deepcopy(doc)
        if FAULTS[name][1](broken, rng, zone):
            return name, dump(broken)


def _not_json(doc: Doc, rng: random.Random) -> bytes:
    raw = dump(doc)
    kind = rng.choice(("truncated", "xml", "csv"))
    if kind == "truncated":  # a partner's buffer cut the message short
        return raw[: rng.randrange(20, len(raw) - 5)]
    if kind == "xml":
        return f"<event><id>{doc.get('event_id', '')}</id><type>{doc['event_type']}</type></event>".encode()
    return f"{doc.get('event_id', '')},{doc['event_type']},{doc.get('occurred_at', '')}".encode()
