"""Records downstream of validation. They carry pseudonymous keys only, never a raw identifier.

- `Fact`: one accepted event, pseudonymised and flattened (topic safeguarding.events.v1).
- `DeadLetter`: one rejected message with its reason and where it came from.
- `Alert`, `ChildSnapshot`, `Episode`, `PlaceLink`: what the correlation engine emits.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from models.events import (
    ActionKind,
    ActionStatus,
    Agency,
    Classification,
    CpCategory,
    CseLevel,
    DashRisk,
    Decision,
    Disclosure,
    ListingReason,
    PoliceRisk,
    PremisesCategory,
    ReviewRisk,
    Setting,
    Sex,
)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Place(Record):
    """A location with nothing identifying left: postcode as its sector, lat/lon at ~100 m,
    a premises name only for non-residential categories, a residential ref pseudonymised."""

    postcode_sector: str | None = None
    ward_code: str | None = None
    ward_name: str | None = None
    lat: float | None = None
    lon: float | None = None
    premises_category: PremisesCategory | None = None
    premises_name: str | None = None
    premises_ref: str | None = None


class Fact(Record):
    """One accepted event, flattened. `child_keys` are HMAC keys of the identifiers it names
    (for identity.linked, the linked identifiers); `child_keys[0]` is the topic key."""

    event_id: str
    event_type: str
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime | None = None
    agency: Agency
    system: str | None = None
    record_key: str | None = None
    child_keys: list[str]
    birth_month: str | None = None
    sex: Sex | None = None
    looked_after: bool | None = None
    learning_disability: bool | None = None
    place: Place | None = None
    # payload, flattened: only the fields of the event's type are set
    episode_ref: str | None = None
    classification: Classification | None = None
    setting: Setting | None = None
    police_risk: PoliceRisk | None = None
    disclosures: list[Disclosure] = []
    named_places: list[Place] = []
    cse_level: CseLevel | None = None
    cse_tool: str | None = None
    cse_indicators: list[str] = []
    incident_ref: str | None = None
    child_present: bool | None = None
    marac_referred: bool | None = None
    dash_score: int | None = None
    dash_risk: DashRisk | None = None
    encompass_notified_at: AwareDatetime | None = None
    plan_ref: str | None = None
    cp_category: CpCategory | None = None
    previous_plans: int | None = None
    # v1.1, the CMOG's records (meeting_ref and action_ref keyed like identifiers)
    listing_reason: ListingReason | None = None
    alert_ids: list[str] = []
    meeting_ref: str | None = None
    decision: Decision | None = None
    review_risk: ReviewRisk | None = None
    action_ref: str | None = None
    owner_agency: Agency | None = None
    due_at: AwareDatetime | None = None
    action_kind: ActionKind | None = None
    action_status: ActionStatus | None = None


class DeadLetter(Record):
    """A rejected inbound message. `original` is base64 of the bytes as received: it may hold raw
    identifiers, so this topic has the inbound topic's short retention and is never sunk whole."""

    errors: list[dict[str, str]]
    original: str  # base64 of at most the first DEADLETTER_KEEP_BYTES of the message
    original_bytes: int | None = None  # the whole message's length ...
    original_sha256: str | None = None  # ... and digest, so a truncated original can still be matched
    topic: str
    partition: int
    offset: int
    received_at: AwareDatetime
    agency: str | None = None
    event_type: str | None = None


AlertStatus = Literal["open", "resolved", "withdrawn"]


class Alert(Record):
    """One alert's current lifecycle state, keyed by `alert_id` (rule + subject + window).

    `withdrawn` means a late event showed the alert should never have been raised: consumers
    hide it. `changed_at` orders versions of the same alert (the clock when it changed)."""

    alert_id: str
    rule: str
    subject_kind: Literal["child", "place"]
    subject: str
    status: AlertStatus
    opened_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    evidence: list[str]
    summary: str
    changed_at: AwareDatetime
    # v1.1: when a cmog.reviewed first named this alert (it keeps its status); None until then.
    reviewed_at: AwareDatetime | None = None


class Episode(Record):
    """A missing episode's current state, keyed by (child_key, episode_ref)."""

    child_key: str
    episode_ref: str
    classification: Classification | None = None
    setting: Setting | None = None
    police_risk: PoliceRisk | None = None
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    last_seen_place: str | None = None
    found_place: str | None = None
    interview: Literal["none", "offered", "completed", "declined"] = "none"
    interview_at: AwareDatetime | None = None
    data_quality: list[str] = []
    changed_at: AwareDatetime


class ChildSnapshot(Record):
    """The latest picture of one child, keyed by `child_key` (the canonical pseudonymous key)."""

    child_key: str
    merged_keys: list[str] = []
    birth_month: str | None = None
    age_band: str | None = None
    sex: Sex | None = None
    looked_after: bool = False
    learning_disability: bool = False
    cse_level: CseLevel = CseLevel.none
    cp_plan_active: bool = False
    cp_category: CpCategory | None = None
    missing_now: bool = False
    episodes_30d: int = 0
    episodes_90d: int = 0
    last_interview_at: AwareDatetime | None = None
    da_incidents_12m: int = 0
    agencies: list[str] = []
    open_alerts: list[str] = []
    last_event_at: AwareDatetime | None = None
    changed_at: AwareDatetime
    retired: bool = False  # merged into another child key


class PlaceLink(Record):
    """A child linked to a place by one event (last seen, found, or named in an interview).
    Keyed by `place_key`; the hotspot stage counts distinct children per place."""

    place_key: str
    place_kind: Literal["premises", "sector", "ward"]
    place: Place
    child_key: str
    event_id: str
    role: Literal["last_seen", "found", "named"]
    occurred_at: AwareDatetime
    child_cse_level: CseLevel = CseLevel.none
