"""Validate and pseudonymise one inbound message: raw bytes -> Fact | DeadLetter. Pure.

The secret is passed in; a raw identifier never leaves this module: identifiers become
HMAC-SHA256 keys, postcodes their sector, lat/lon ~100 m, residential premises lose their name
and their ref is keyed like an identifier, free-text reasons are dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from models.derived import DeadLetter, Fact, Place
from models.events import (
    EVENT_TYPES,
    RESIDENTIAL,
    Agency,
    ChildEvent,
    CmogActionSetEvent,
    CmogActionUpdatedEvent,
    CmogListedEvent,
    CmogReviewedEvent,
    CpPlanCategoryChangedEvent,
    CpPlanEndedEvent,
    CpPlanStartedEvent,
    CseAssessedEvent,
    DaIncidentEvent,
    Event,
    FieldError,
    Identifier,
    InterviewCompletedEvent,
    InterviewDeclinedEvent,
    InterviewOfferedEvent,
    Location,
    MissingEndedEvent,
    MissingRiskGradedEvent,
    MissingStartedEvent,
    contract_path,
    event_identifiers,
    parse_event,
    postcode_sector,
)

# 3 decimal places of a degree: ~111 m of latitude, ~70 m of longitude in England.
LATLON_DECIMALS = 3
# A dead letter keeps at most this much of the original, so it always fits the message limit.
DEADLETTER_KEEP_BYTES = 64 * 1024
INVALID = "invalid"  # what a dead letter records for an agency or event type outside the contract


@dataclass(frozen=True)
class CseVocabulary:
    """The CSE tools and indicators kept on a fact. Anything else is dropped: free text may name
    people. The contract's default keeps none."""

    tools: frozenset[str] = field(default_factory=frozenset)
    indicators: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Origin:
    """Where a message was read: carried into the dead letter so a partner can find it."""

    topic: str
    partition: int
    offset: int
    received_at: datetime


def pseudonym(secret: bytes, text: str) -> str:
    """HMAC-SHA256 of `text` under the secret, hex. Same input, same key, in every agency's feed."""
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def identifier_key(secret: bytes, identifier: Identifier) -> str:
    return pseudonym(secret, f"{identifier.scheme.value}:{identifier.normalised}")


def to_place(secret: bytes, location: Location) -> Place:
    premises = location.premises
    residential = premises is not None and premises.category in RESIDENTIAL
    premises_ref = None
    if premises is not None and premises.ref is not None:
        premises_ref = pseudonym(secret, f"premises:{premises.ref}") if residential else premises.ref
    return Place(
        postcode_sector=postcode_sector(location.postcode) if location.postcode else None,
        ward_code=location.ward_code,
        ward_name=location.ward_name,
        lat=round(location.lat, LATLON_DECIMALS) if location.lat is not None else None,
        lon=round(location.lon, LATLON_DECIMALS) if location.lon is not None else None,
        premises_category=premises.category if premises else None,
        premises_name=premises.name if premises and not residential else None,
        premises_ref=premises_ref,
    )


def ref_key(secret: bytes, kind: str, ref: str) -> str:
    """A partner's record number (episode, incident, plan...) keyed like an identifier: it may embed a
    name or a crime number. The same ref from two agencies gives the same key."""
    return pseudonym(secret, f"{kind}:{ref}")


def _payload_fields(secret: bytes, event: Event, vocabulary: CseVocabulary) -> dict[str, Any]:
    """The type's payload as flat Fact fields, references keyed. Free-text reasons are dropped, and
    CSE tools and indicators outside the vocabulary: they may name people."""
    match event:
        case MissingStartedEvent(payload=p):
            return {
                "episode_ref": ref_key(secret, "episode_ref", p.episode_ref),
                "classification": p.classification,
                "setting": p.setting,
                "police_risk": p.police_risk,
            }
        case MissingRiskGradedEvent(payload=p):
            return {"episode_ref": ref_key(secret, "episode_ref", p.episode_ref), "police_risk": p.police_risk}
        case MissingEndedEvent(payload=p) | InterviewOfferedEvent(payload=p) | InterviewDeclinedEvent(payload=p):
            return {"episode_ref": ref_key(secret, "episode_ref", p.episode_ref)}
        case InterviewCompletedEvent(payload=p):
            return {
                "episode_ref": ref_key(secret, "episode_ref", p.episode_ref),
                "disclosures": list(p.disclosures),
                "named_places": [to_place(secret, loc) for loc in p.places],
            }
        case CseAssessedEvent(payload=p):
            return {
                "cse_level": p.level,
                "cse_tool": p.tool if p.tool in vocabulary.tools else None,
                "cse_indicators": [i for i in p.indicators if i in vocabulary.indicators],
            }
        case DaIncidentEvent(payload=p):
            return {
                "incident_ref": ref_key(secret, "incident_ref", p.incident_ref),
                "child_present": p.child_present,
                "marac_referred": p.marac_referred,
                "dash_score": p.dash_score,
                "dash_risk": p.dash_risk,
                "encompass_notified_at": p.encompass_notified_at,
            }
        case CpPlanStartedEvent(payload=p):
            return {"plan_ref": ref_key(secret, "plan_ref", p.plan_ref), "cp_category": p.category,
                    "previous_plans": p.previous_plans}
        case CpPlanCategoryChangedEvent(payload=p):
            return {"plan_ref": ref_key(secret, "plan_ref", p.plan_ref), "cp_category": p.category}
        case CpPlanEndedEvent(payload=p):
            return {"plan_ref": ref_key(secret, "plan_ref", p.plan_ref)}
        case CmogListedEvent(payload=p):
            return {"listing_reason": p.reason, "alert_ids": list(p.alert_ids)}
        case CmogReviewedEvent(payload=p):
            return {"meeting_ref": ref_key(secret, "meeting_ref", p.meeting_ref), "decision": p.decision,
                    "review_risk": p.risk, "alert_ids": list(p.alert_ids)}
        case CmogActionSetEvent(payload=p):
            return {"action_ref": ref_key(secret, "action_ref", p.action_ref), "owner_agency": p.owner_agency,
                    "due_at": p.due_at, "action_kind": p.kind}
        case CmogActionUpdatedEvent(payload=p):
            return {"action_ref": ref_key(secret, "action_ref", p.action_ref), "action_status": p.status}
    return {}


def to_fact(secret: bytes, event: Event, vocabulary: CseVocabulary = CseVocabulary()) -> Fact:
    """Pseudonymise a valid event. Keys are de-duplicated but keep the order they were given in."""
    keys = list(dict.fromkeys(identifier_key(secret, i) for i in event_identifiers(event)))
    child: dict[str, Any] = {}
    if isinstance(event, ChildEvent):
        child = {
            "birth_month": event.child.birth_month,
            "sex": event.child.sex,
            "looked_after": event.child.looked_after,
            "learning_disability": event.child.learning_disability,
        }
    source = event.source
    return Fact(
        event_id=str(event.event_id),
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        agency=source.agency,
        system=source.system,
        record_key=pseudonym(secret, f"record:{source.agency.value}:{source.record_ref}")
        if source.record_ref
        else None,
        child_keys=keys,
        place=to_place(secret, event.location) if event.location else None,
        **child,
        **_payload_fields(secret, event, vocabulary),
    )


def _peek(raw: bytes, allowed: frozenset[str], field: str, inner: str | None = None) -> str | None:
    """A field of a rejected message for dead-letter counts by agency/type: the contract's value,
    INVALID for anything else (partner text never reaches storage), None when absent."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeError, RecursionError):
        return None
    value = doc.get(field) if isinstance(doc, dict) else None
    if inner is not None:
        value = value.get(inner) if isinstance(value, dict) else None
    if value is None:
        return None
    return value if isinstance(value, str) and value in allowed else INVALID


AGENCIES = frozenset(a.value for a in Agency)
TYPES = frozenset(EVENT_TYPES)


def dead_letter(raw: bytes, errors: list[FieldError], origin: Origin) -> DeadLetter:
    """The rejection: every reason with its path in contract names, and at most the first 64 KiB of
    the original (with its length and SHA-256), so the dead letter always fits the message limit."""
    return DeadLetter(
        errors=[{"loc": contract_path(e.loc), "msg": e.msg} for e in errors],
        original=base64.b64encode(raw[:DEADLETTER_KEEP_BYTES]).decode("ascii"),
        original_bytes=len(raw),
        original_sha256=hashlib.sha256(raw).hexdigest(),
        topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        received_at=origin.received_at,
        agency=_peek(raw, AGENCIES, "source", "agency"),
        event_type=_peek(raw, TYPES, "event_type"),
    )


def ingest(
    secret: bytes,
    raw: bytes,
    origin: Origin,
    vocabulary: CseVocabulary = CseVocabulary(),
    now: datetime | None = None,
) -> Fact | DeadLetter:
    """One inbound message -> a Fact (valid) or a DeadLetter (invalid, with every reason). `now` is
    the moment of validation (occurred_at may be at most a day after it): the message's receipt time
    unless given (a back-fill stamps simulated receipt times but validates at the wall clock)."""
    event, errors = parse_event(raw, now=now or origin.received_at)
    if event is None:
        return dead_letter(raw, errors, origin)
    return to_fact(secret, event, vocabulary)


# --- duplicates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What the ingest stage remembers of an event_id while it is in the dedup window: the message
    that brought it (source partition and offset) and when it was first seen (epoch seconds). The
    partition also says which changelog partition owns the entry, so a sweep deletes only its own."""

    partition: int
    first_seen: float
    offset: int

    def to_table(self) -> dict[str, float | int]:
        return {"partition": self.partition, "first_seen": self.first_seen, "offset": self.offset}

    @classmethod
    def from_table(cls, value: dict[str, Any]) -> Seen:
        return cls(
            partition=int(value["partition"]), first_seen=float(value["first_seen"]), offset=int(value["offset"])
        )


def admit(seen: Seen | None, origin: Origin) -> Seen | None:
    """Whether a valid fact is sent on: the entry to remember when it is, None for a partner's duplicate.

    Not seen before: send. The same message again (same partition and offset, redelivered after a
    crash that may have lost the send): send again; everything downstream ignores an event_id it
    already holds. Another message with an event_id already seen: a duplicate, dropped."""
    if seen is not None and (seen.partition, seen.offset) != (origin.partition, origin.offset):
        return None
    return Seen(partition=origin.partition, first_seen=origin.received_at.timestamp(), offset=origin.offset)


def expired(seen: Seen, now: datetime, window: timedelta) -> bool:
    """An entry older than the dedup window is forgotten (the correlation core still ignores the event_id)."""
    return seen.first_seen < (now - window).timestamp()
