"""Contract events as JSON dicts, and a tiny harness running them through ingest -> Engine.

Identifiers are valid (NHS numbers with their modulus-11 check digit, UPNs with their check
letter) so every event passes validation; event ids are derived from the event's content, so a
scenario built twice has the same ids (hypothesis shrinks reproducibly).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models.derived import Alert, DeadLetter, Fact
from models.events import Identifier, Scheme, nhs_number_ok, upn_check_letter
from settings import PseudonymisationSettings
from streams.core.clock import advance_watermark
from streams.core.config import RulesConfig, load_rules
from streams.core.engine import Engine
from streams.core.ingest import Origin, identifier_key, ingest, ref_key

# Monday 2 March 2026, 10:00 UTC (GMT: BST starts on Sunday 29 March 2026).
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NAMESPACE = uuid.UUID("6f1c2a52-3b7e-4c1e-9a53-1d2f0c9b7a11")


def secret() -> bytes:
    return PseudonymisationSettings().pseudonymisation_key.get_secret_value().encode("utf-8")


def nhs_number(seed: int) -> str:
    """A valid NHS number derived from `seed` (the first with a valid check digit from there)."""
    base = 400_000_000 + seed * 7
    while True:
        body = f"{base:09d}"
        for check in range(10):
            if nhs_number_ok(body + str(check)):
                return body + str(check)
        base += 1


def upn(seed: int) -> str:
    body = f"{seed:011d}0"
    return upn_check_letter(body) + body


@dataclass(frozen=True)
class Kid:
    """A test child: its identifiers and the child fields it is reported with."""

    identifiers: tuple[tuple[str, str], ...]
    birth_month: str | None = "2012-05"
    looked_after: bool | None = None
    learning_disability: bool | None = None

    @classmethod
    def make(cls, seed: int, **fields: Any) -> Kid:
        return cls(identifiers=(("nhs_number", nhs_number(seed)),), **fields)

    def known_as(self, scheme: str, value: str) -> Kid:
        """The same child reported under a different identifier only."""
        return Kid(((scheme, value),), self.birth_month, self.looked_after, self.learning_disability)

    def child_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"identifiers": [{"scheme": s, "value": v} for s, v in self.identifiers]}
        if self.birth_month is not None:
            doc["birth_month"] = self.birth_month
        if self.looked_after is not None:
            doc["looked_after"] = self.looked_after
        if self.learning_disability is not None:
            doc["learning_disability"] = self.learning_disability
        return doc

    @property
    def key(self) -> str:
        """The pseudonymous key of the first identifier."""
        scheme, value = self.identifiers[0]
        return key_of(scheme, value)


def key_of(scheme: str, value: str) -> str:
    return identifier_key(secret(), Identifier(scheme=Scheme(scheme), value=value))


def event(
    event_type: str,
    kid: Kid | None,
    at: datetime,
    payload: dict[str, Any],
    *,
    agency: str = "childrens_social_care",
    location: dict[str, Any] | None = None,
    salt: str = "",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": at.isoformat(),
        "source": {"agency": agency},
        "payload": payload,
    }
    if kid is not None:
        doc["child"] = kid.child_doc()
    if location is not None:
        doc["location"] = location
    doc["event_id"] = str(uuid.uuid5(NAMESPACE, json.dumps(doc, sort_keys=True) + salt))
    return doc


def missing_started(kid: Kid, at: datetime, ref: str, *, risk: str | None = None, **kw: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"episode_ref": ref, "classification": "missing", "setting": "home"}
    if risk is not None:
        payload["police_risk"] = risk
    kw.setdefault("agency", "police")
    return event("missing.started", kid, at, payload, **kw)


def risk_graded(kid: Kid, at: datetime, ref: str, risk: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("agency", "police")
    return event("missing.risk_graded", kid, at, {"episode_ref": ref, "police_risk": risk}, **kw)


def missing_ended(kid: Kid, at: datetime, ref: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("agency", "police")
    return event("missing.ended", kid, at, {"episode_ref": ref}, **kw)


def interview_offered(kid: Kid, at: datetime, ref: str, **kw: Any) -> dict[str, Any]:
    return event("return_interview.offered", kid, at, {"episode_ref": ref}, **kw)


def interview_completed(
    kid: Kid, at: datetime, ref: str, places: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[str, Any]:
    payload: dict[str, Any] = {"episode_ref": ref}
    if places:
        payload["places"] = places
    return event("return_interview.completed", kid, at, payload, **kw)


def interview_declined(kid: Kid, at: datetime, ref: str, **kw: Any) -> dict[str, Any]:
    return event("return_interview.declined", kid, at, {"episode_ref": ref}, **kw)


def cse(kid: Kid, at: datetime, level: str, **kw: Any) -> dict[str, Any]:
    return event("cse.risk_assessed", kid, at, {"level": level}, **kw)


def da(
    kid: Kid,
    at: datetime,
    ref: str,
    *,
    present: bool = True,
    marac: bool = False,
    dash: int | None = None,
    dash_risk: str | None = None,
    notified: datetime | None = None,
    **kw: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"incident_ref": ref, "child_present": present, "marac_referred": marac}
    if dash is not None:
        payload["dash_score"] = dash
    if dash_risk is not None:
        payload["dash_risk"] = dash_risk
    if notified is not None:
        payload["encompass_notified_at"] = notified.isoformat()
    kw.setdefault("agency", "police")
    return event("da.incident", kid, at, payload, **kw)


def plan_started(
    kid: Kid, at: datetime, ref: str, *, previous: int = 0, category: str = "NEG", **kw: Any
) -> dict[str, Any]:
    payload = {"plan_ref": ref, "category": category, "previous_plans": previous}
    return event("cp_plan.started", kid, at, payload, **kw)


def plan_ended(kid: Kid, at: datetime, ref: str, **kw: Any) -> dict[str, Any]:
    return event("cp_plan.ended", kid, at, {"plan_ref": ref}, **kw)


def linked(identifiers: Iterable[tuple[str, str]], at: datetime, **kw: Any) -> dict[str, Any]:
    payload = {"identifiers": [{"scheme": s, "value": v} for s, v in identifiers]}
    return event("identity.linked", None, at, payload, **kw)


def place(
    sector_postcode: str | None = None, *, premises: dict[str, Any] | None = None, ward: str | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if sector_postcode is not None:
        doc["postcode"] = sector_postcode
    if premises is not None:
        doc["premises"] = premises
    if ward is not None:
        doc["ward_code"] = ward
    return doc


# --- running ------------------------------------------------------------------------------------


def episode(ref: str) -> str:
    """An episode ref as facts, episodes and alerts carry it: keyed like an identifier."""
    return ref_key(secret(), "episode_ref", ref)


def to_fact(doc: dict[str, Any]) -> Fact:
    # Received as it happened: the contract bounds occurred_at by the moment of validation.
    received_at = datetime.fromisoformat(doc["occurred_at"]) if "occurred_at" in doc else T0
    result = ingest(secret(), json.dumps(doc).encode(), Origin("test", 0, 0, received_at))
    assert not isinstance(result, DeadLetter), result.errors
    return result


def run(
    docs: Iterable[dict[str, Any]],
    until: datetime | None = None,
    config: RulesConfig | None = None,
    *,
    roundtrip: bool = False,
    check: bool = False,
) -> Engine:
    """Feed events in the given (arrival) order with the replay clock, then advance to `until`.
    `check`: the engine's checking mode (every incremental step compared with a full recompute)."""
    engine = Engine(config or load_rules(), roundtrip=roundtrip, check=check)
    watermark: datetime | None = None
    for doc in docs:
        fact = to_fact(doc)
        watermark = advance_watermark(watermark, fact.occurred_at)
        engine.process(fact, watermark)
        engine.advance(watermark)
    end = until or watermark
    if end is not None:
        engine.advance(end)
    return engine


def alerts_for(engine: Engine, rule: str, *, shown_only: bool = False) -> list[Alert]:
    alerts = [a for a in engine.alerts.values() if a.rule == rule]
    if shown_only:
        alerts = [a for a in alerts if a.status != "withdrawn"]
    return sorted(alerts, key=lambda a: (a.opened_at, a.alert_id))


def shown(engine: Engine) -> set[tuple[str, str, datetime, datetime | None]]:
    """The final open and resolved alerts as (alert_id, status, opened_at, resolved_at)."""
    return {(a.alert_id, a.status, a.opened_at, a.resolved_at) for a in engine.current_alerts()}
