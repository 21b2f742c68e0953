"""The event contract v1 (shared/contract/EVENTS.md), as pydantic v2 models.

Strict on purpose: partner systems are written against this text, so anything that breaks it is
rejected with a field path and a message, never guessed at. Parse with `parse_event(raw_bytes)`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

# Bounds from the contract's "v1 clarifications" (found by fuzzing).
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_STRING = 200
MAX_IDENTIFIERS = 20
MAX_PLACES = 20
MAX_DISCLOSURES = 12
MAX_INDICATORS = 30
MAX_ERRORS = 100
MAX_PREVIOUS_PLANS = 50
EARLIEST_OCCURRED_AT = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_ALLOWANCE = timedelta(days=1)  # occurred_at may be at most this far after the moment of validation
EARLIEST_BIRTH_MONTH = "1990-01"
BIRTH_MONTHS_AHEAD = 9  # unborn children on a plan: at most nine months after occurred_at


class Strict(BaseModel):
    """Unknown fields are errors (a typo in a partner's field name must not pass silently); every
    string has an upper bound."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_max_length=MAX_STRING)


# ISO 8601 date and time with a UTC offset (or Z); pydantic alone would read "-1" or 1658739324 as Unix time.
ISO_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|z|[+-][0-9]{2}:?[0-9]{2})?"
)


def _iso_text(value: object) -> object:
    if isinstance(value, datetime):
        return value  # built in Python (tests, the simulator); JSON input is always text
    if not isinstance(value, str) or not ISO_DATETIME_RE.fullmatch(value):
        raise ValueError("must be an ISO 8601 date and time with a UTC offset, e.g. 2026-03-01T14:05:00+00:00")
    parsed = datetime.fromisoformat(value)  # ValueError (e.g. month 13) is reported as the field's error
    if parsed.tzinfo is not None:
        parsed.astimezone(UTC)  # OverflowError at the edges of year 1 and 9999 -> reported below
    return parsed


def _iso_datetime(value: object) -> object:
    try:
        return _iso_text(value)
    except OverflowError:
        raise ValueError("date and time out of range") from None


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]


class Agency(StrEnum):
    police = "police"
    childrens_social_care = "childrens_social_care"
    health = "health"
    education = "education"
    youth_justice = "youth_justice"
    housing = "housing"
    voluntary_sector = "voluntary_sector"
    other = "other"


class Sex(StrEnum):
    F = "F"
    M = "M"
    X = "X"
    U = "U"


class Scheme(StrEnum):
    nhs_number = "nhs_number"
    upn = "upn"
    la_person_id = "la_person_id"
    police_person_id = "police_person_id"
    health_local_id = "health_local_id"


class PremisesCategory(StrEnum):
    home = "home"
    foster_home = "foster_home"
    childrens_home = "childrens_home"
    supported_accommodation = "supported_accommodation"
    school = "school"
    hotel = "hotel"
    takeaway = "takeaway"
    licensed_premises = "licensed_premises"
    taxi_firm = "taxi_firm"
    shop = "shop"
    park = "park"
    transport_hub = "transport_hub"
    address_of_concern = "address_of_concern"
    other = "other"


# Where a child lives: the name is never kept, and the ref is pseudonymised like an identifier.
RESIDENTIAL = frozenset(
    {
        PremisesCategory.home,
        PremisesCategory.foster_home,
        PremisesCategory.childrens_home,
        PremisesCategory.supported_accommodation,
    }
)


class Classification(StrEnum):
    missing = "missing"
    absent = "absent"


class Setting(StrEnum):
    home = "home"
    care = "care"
    education = "education"


class PoliceRisk(StrEnum):
    no_apparent_risk = "no_apparent_risk"
    low = "low"
    medium = "medium"
    high = "high"


class Disclosure(StrEnum):
    cse = "cse"
    cce = "cce"
    county_lines = "county_lines"
    substance_misuse = "substance_misuse"
    missing_with_peers = "missing_with_peers"
    adults_of_concern = "adults_of_concern"
    self_harm = "self_harm"
    abuse_at_home = "abuse_at_home"
    bullying = "bullying"
    other = "other"


class CseLevel(StrEnum):
    none = "none"
    low = "low"
    medium = "medium"
    high = "high"


CSE_RANK = {CseLevel.none: 0, CseLevel.low: 1, CseLevel.medium: 2, CseLevel.high: 3}


class DashRisk(StrEnum):
    standard = "standard"
    medium = "medium"
    high = "high"


class CpCategory(StrEnum):
    """CIN census codes."""

    NEG = "NEG"
    PHY = "PHY"
    SAB = "SAB"
    EMO = "EMO"
    MUL = "MUL"


class ListingReason(StrEnum):
    alert = "alert"
    partner_concern = "partner_concern"
    return_interview = "return_interview"
    other = "other"


class Decision(StrEnum):
    keep = "keep"
    step_down = "step_down"
    close = "close"


class ReviewRisk(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class ActionKind(StrEnum):
    return_interview = "return_interview"
    safety_plan = "safety_plan"
    disruption = "disruption"
    strategy_meeting = "strategy_meeting"
    referral = "referral"
    information_sharing = "information_sharing"
    other = "other"


class ActionStatus(StrEnum):
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


# --- identifiers -------------------------------------------------------------------------------

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # DfE check-letter table: 23 letters, no I, O, S


def nhs_check_digit(first_nine: str) -> int | None:
    """Modulus 11: weights 10..2 on the first nine digits; 11 -> 0; 10 -> None (no valid number)."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def nhs_number_ok(digits: str) -> bool:
    """Ten digits whose last is the check digit of the first nine."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    return nhs_check_digit(digits[:9]) == int(digits[9])


def upn_check_letter(body: str) -> str:
    """DfE UPN check letter for characters 2..13 (weights 2..13, sum mod 23).

    A temporary UPN ends in a letter, which counts as its position in the check-letter table.
    """
    total = 0
    for weight, char in enumerate(body, start=2):
        value = int(char) if char.isdigit() else UPN_LETTERS.index(char)
        total += value * weight
    return UPN_LETTERS[total % 23]


def upn_ok(upn: str) -> bool:
    if not re.fullmatch(r"[A-Z][0-9]{11}[0-9A-Z]", upn):
        return False
    if not upn[-1].isdigit() and upn[-1] not in UPN_LETTERS:
        return False
    return upn_check_letter(upn[1:]) == upn[0]


def normalise_identifier(scheme: Scheme, value: str) -> str:
    """The canonical text of an identifier: what is hashed and what two agencies agree on."""
    if scheme is Scheme.nhs_number:
        return value.replace(" ", "")
    if scheme is Scheme.upn:
        return value.strip().upper()
    return value.strip()


class Identifier(Strict):
    scheme: Scheme
    value: str

    @field_validator("value")
    @classmethod
    def _check_value(cls, value: str, info: ValidationInfo) -> str:
        scheme = info.data.get("scheme")
        if scheme is None:
            return value  # the scheme's own error is reported
        cls._check(scheme, normalise_identifier(scheme, value))
        return value

    @staticmethod
    def _check(scheme: Scheme, value: str) -> None:
        if scheme is Scheme.nhs_number:
            if not re.fullmatch(r"[0-9]{10}", value):
                raise ValueError("nhs_number must be 10 digits (spaces allowed)")
            if not nhs_number_ok(value):
                raise ValueError("nhs_number fails its modulus-11 check digit")
        elif scheme is Scheme.upn:
            if not re.fullmatch(r"[A-Z][0-9]{11}[0-9A-Z]", value):
                raise ValueError("upn must be 13 characters: a check letter, 11 digits, a digit or letter")
            if not upn_ok(value):
                raise ValueError("upn check letter does not match")
        elif not 1 <= len(value) <= 40:
            raise ValueError(f"{scheme.value} must be 1 to 40 characters after trimming")

    @property
    def normalised(self) -> str:
        return normalise_identifier(self.scheme, self.value)


# --- location ----------------------------------------------------------------------------------

# UK postcode: outward code (A9, A99, AA9, AA99, A9A, AA9A) + inward code (9AA); GIR 0AA too.
POSTCODE_RE = re.compile(
    r"^(GIR ?0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRV-Y])"
    r" ?[0-9][ABD-HJLNP-UW-Z]{2})$"
)
WARD_CODE_RE = re.compile(r"^(E05|W05|S13|N08)[0-9]{6}$")


def _postcode(value: str) -> str:
    compact = value.strip().upper().replace(" ", "")
    candidate = f"{compact[:-3]} {compact[-3:]}" if len(compact) > 3 else compact
    if not POSTCODE_RE.fullmatch(candidate):
        raise ValueError("not a valid UK postcode: an outward code such as CV1, a space, an inward code such as 2GN")
    return candidate


def postcode_sector(postcode: str) -> str:
    """'CV1 2GN' -> 'CV1 2': the outward code and the inward code's first digit."""
    return postcode[:-2]


def _ward_code(value: str) -> str:
    if not WARD_CODE_RE.fullmatch(value):
        raise ValueError("ward_code must be an ONS ward code like E05001219")
    return value


class Premises(Strict):
    category: PremisesCategory
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_STRING)] | None = None
    ref: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None


class Location(Strict):
    postcode: Annotated[str, AfterValidator(_postcode)] | None = None
    ward_code: Annotated[str, AfterValidator(_ward_code)] | None = None
    ward_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    premises: Premises | None = None

    @model_validator(mode="after")
    def _lat_lon_together(self) -> Location:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


# --- envelope parts ----------------------------------------------------------------------------


class Source(Strict):
    agency: Agency
    system: Annotated[str, StringConstraints(max_length=100)] | None = None
    record_ref: Annotated[str, StringConstraints(max_length=100)] | None = None


BirthMonth = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


class Child(Strict):
    identifiers: Annotated[list[Identifier], Field(min_length=1, max_length=MAX_IDENTIFIERS)]
    birth_month: BirthMonth | None = None
    sex: Sex | None = None
    looked_after: bool | None = None
    learning_disability: bool | None = None


Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


# --- payloads ----------------------------------------------------------------------------------


class MissingStarted(Strict):
    episode_ref: Ref
    classification: Classification
    setting: Setting
    police_risk: PoliceRisk | None = None


class MissingRiskGraded(Strict):
    episode_ref: Ref
    police_risk: PoliceRisk


class EpisodeRef(Strict):
    episode_ref: Ref


class InterviewCompleted(Strict):
    episode_ref: Ref
    disclosures: Annotated[list[Disclosure], Field(max_length=MAX_DISCLOSURES)] = []
    places: Annotated[list[Location], Field(max_length=MAX_PLACES)] = []


class InterviewDeclined(Strict):
    episode_ref: Ref
    reason: Annotated[str, StringConstraints(max_length=MAX_STRING)] | None = None


class CseAssessed(Strict):
    level: CseLevel
    tool: Annotated[str, StringConstraints(max_length=100)] | None = None
    indicators: Annotated[
        list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=MAX_INDICATORS)
    ] = []


class DaIncident(Strict):
    incident_ref: Ref
    child_present: bool
    marac_referred: bool
    dash_score: Annotated[int, Field(ge=0, le=24)] | None = None
    dash_risk: DashRisk | None = None
    encompass_notified_at: Timestamp | None = None


class CpPlanStarted(Strict):
    plan_ref: Ref
    category: CpCategory
    previous_plans: Annotated[int, Field(ge=0, le=MAX_PREVIOUS_PLANS)]


class CpPlanCategoryChanged(Strict):
    plan_ref: Ref
    category: CpCategory


class CpPlanEnded(Strict):
    plan_ref: Ref
    reason: Annotated[str, StringConstraints(max_length=MAX_STRING)] | None = None


# v1.1: the CMOG's own records. No free text anywhere (a note may name people): references only.
MAX_ALERT_IDS = 100
DUE_WITHIN = timedelta(days=5 * 365)  # due_at within five years of occurred_at
AlertId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
AlertIds = Annotated[list[AlertId], Field(max_length=MAX_ALERT_IDS)]


class CmogListed(Strict):
    reason: ListingReason
    alert_ids: AlertIds = []


class CmogReviewed(Strict):
    meeting_ref: Ref
    decision: Decision
    risk: ReviewRisk
    alert_ids: AlertIds = []


class CmogActionSet(Strict):
    action_ref: Ref
    owner_agency: Agency
    due_at: Timestamp
    kind: ActionKind


class CmogActionUpdated(Strict):
    action_ref: Ref
    status: ActionStatus


class IdentityLinked(Strict):
    identifiers: Annotated[list[Identifier], Field(min_length=2, max_length=MAX_IDENTIFIERS)]

    @field_validator("identifiers")
    @classmethod
    def _at_least_two_distinct(cls, identifiers: list[Identifier]) -> list[Identifier]:
        if len({(i.scheme, i.normalised) for i in identifiers}) < 2:
            raise ValueError("identity.linked must name at least two different identifiers")
        return identifiers


# --- events ------------------------------------------------------------------------------------


class Envelope(Strict):
    event_id: UUID
    schema_version: Literal[1]
    occurred_at: Timestamp
    recorded_at: Timestamp | None = None
    source: Source
    location: Location | None = None

    @field_validator("schema_version", mode="before")
    @classmethod
    def _schema_version_is_int(cls, value: object) -> object:
        # Literal[1] compares by equality, so true and 1.0 would pass without this.
        if type(value) is not int:
            raise ValueError("schema_version must be the integer 1")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _occurred_in_range(cls, occurred_at: datetime, info: ValidationInfo) -> datetime:
        # "now" is the moment of validation; ingest passes the message's receipt time as context.
        now = (info.context or {}).get("now") or datetime.now(UTC)
        if occurred_at < EARLIEST_OCCURRED_AT:
            raise ValueError("occurred_at must not be before 1990-01-01")
        if occurred_at > now + FUTURE_ALLOWANCE:
            raise ValueError("occurred_at must not be more than one day after the moment of validation")
        return occurred_at

    @field_validator("recorded_at")
    @classmethod
    def _recorded_after_occurred(cls, recorded_at: datetime | None, info: ValidationInfo) -> datetime | None:
        occurred_at = info.data.get("occurred_at")
        if recorded_at is not None and occurred_at is not None and recorded_at < occurred_at:
            raise ValueError("recorded_at must not precede occurred_at")
        return recorded_at


class ChildEvent(Envelope):
    child: Child

    @field_validator("child")
    @classmethod
    def _birth_month_in_range(cls, child: Child, info: ValidationInfo) -> Child:
        occurred_at = info.data.get("occurred_at")
        if child.birth_month is None or occurred_at is None:
            return child
        months = occurred_at.year * 12 + occurred_at.month - 1 + BIRTH_MONTHS_AHEAD
        latest = f"{months // 12:04d}-{months % 12 + 1:02d}"
        if not EARLIEST_BIRTH_MONTH <= child.birth_month <= latest:
            raise ValueError(f"birth_month must be from {EARLIEST_BIRTH_MONTH} to nine months after occurred_at")
        return child


class MissingStartedEvent(ChildEvent):
    event_type: Literal["missing.started"]
    payload: MissingStarted


class MissingRiskGradedEvent(ChildEvent):
    event_type: Literal["missing.risk_graded"]
    payload: MissingRiskGraded


class MissingEndedEvent(ChildEvent):
    event_type: Literal["missing.ended"]
    payload: EpisodeRef


class InterviewOfferedEvent(ChildEvent):
    event_type: Literal["return_interview.offered"]
    payload: EpisodeRef


class InterviewCompletedEvent(ChildEvent):
    event_type: Literal["return_interview.completed"]
    payload: InterviewCompleted


class InterviewDeclinedEvent(ChildEvent):
    event_type: Literal["return_interview.declined"]
    payload: InterviewDeclined


class CseAssessedEvent(ChildEvent):
    event_type: Literal["cse.risk_assessed"]
    payload: CseAssessed


class DaIncidentEvent(ChildEvent):
    event_type: Literal["da.incident"]
    payload: DaIncident


class CpPlanStartedEvent(ChildEvent):
    event_type: Literal["cp_plan.started"]
    payload: CpPlanStarted


class CpPlanCategoryChangedEvent(ChildEvent):
    event_type: Literal["cp_plan.category_changed"]
    payload: CpPlanCategoryChanged


class CpPlanEndedEvent(ChildEvent):
    event_type: Literal["cp_plan.ended"]
    payload: CpPlanEnded


class CmogListedEvent(ChildEvent):
    event_type: Literal["cmog.listed"]
    payload: CmogListed


class CmogReviewedEvent(ChildEvent):
    event_type: Literal["cmog.reviewed"]
    payload: CmogReviewed


class CmogActionSetEvent(ChildEvent):
    event_type: Literal["cmog.action.set"]
    payload: CmogActionSet

    @field_validator("payload")
    @classmethod
    def _due_within_five_years(cls, payload: CmogActionSet, info: ValidationInfo) -> CmogActionSet:
        occurred_at = info.data.get("occurred_at")
        if occurred_at is not None and abs(payload.due_at - occurred_at) > DUE_WITHIN:
            raise ValueError("due_at must be within five years of occurred_at")
        return payload


class CmogActionUpdatedEvent(ChildEvent):
    event_type: Literal["cmog.action.updated"]
    payload: CmogActionUpdated


class IdentityLinkedEvent(Envelope):
    """From the MASH: names one child under several identifiers. Has no child field."""

    event_type: Literal["identity.linked"]
    payload: IdentityLinked


Event = Annotated[
    MissingStartedEvent
    | MissingRiskGradedEvent
    | MissingEndedEvent
    | InterviewOfferedEvent
    | InterviewCompletedEvent
    | InterviewDeclinedEvent
    | CseAssessedEvent
    | DaIncidentEvent
    | CpPlanStartedEvent
    | CpPlanCategoryChangedEvent
    | CpPlanEndedEvent
    | CmogListedEvent
    | CmogReviewedEvent
    | CmogActionSetEvent
    | CmogActionUpdatedEvent
    | IdentityLinkedEvent,
    Field(discriminator="event_type"),
]

EVENT_CLASSES: dict[str, type[Envelope]] = {
    "missing.started": MissingStartedEvent,
    "missing.risk_graded": MissingRiskGradedEvent,
    "missing.ended": MissingEndedEvent,
    "return_interview.offered": InterviewOfferedEvent,
    "return_interview.completed": InterviewCompletedEvent,
    "return_interview.declined": InterviewDeclinedEvent,
    "cse.risk_assessed": CseAssessedEvent,
    "da.incident": DaIncidentEvent,
    "cp_plan.started": CpPlanStartedEvent,
    "cp_plan.category_changed": CpPlanCategoryChangedEvent,
    "cp_plan.ended": CpPlanEndedEvent,
    "cmog.listed": CmogListedEvent,
    "cmog.reviewed": CmogReviewedEvent,
    "cmog.action.set": CmogActionSetEvent,
    "cmog.action.updated": CmogActionUpdatedEvent,
    "identity.linked": IdentityLinkedEvent,
}
# The CMOG's own records: never a new concern about the child (multi_agency_concern ignores them).
CMOG_EVENT_TYPES = frozenset({"cmog.listed", "cmog.reviewed", "cmog.action.set", "cmog.action.updated"})
EVENT_TYPES = tuple(EVENT_CLASSES)

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class FieldError(BaseModel):
    """One reason a message was rejected, as a partner developer reads it."""

    model_config = ConfigDict(frozen=True)

    loc: str
    msg: str


def _friendly(error: Any) -> FieldError:
    loc_parts = [str(p) for p in error["loc"]]
    # The union tag (e.g. 'missing.started') leads the path; the partner knows the type already.
    if loc_parts and loc_parts[0] in EVENT_CLASSES:
        loc_parts = loc_parts[1:]
    msg = str(error["msg"])
    msg = msg.removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown field (not in contract v1)"
    elif error["type"] == "union_tag_invalid":
        msg = f"unknown event_type; expected one of: {', '.join(EVENT_TYPES)}"
        loc_parts = ["event_type"]
    elif error["type"] == "union_tag_not_found":
        msg = "event_type is required"
        loc_parts = ["event_type"]
    elif error["type"] == "timezone_aware":
        msg = "datetime must carry a UTC offset, e.g. 2026-03-01T14:05:00+00:00"
    return FieldError(loc=".".join(loc_parts) or "(message)", msg=msg)


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def _framing_error(raw: bytes | str) -> FieldError | None:
    """What makes a message unreadable before its fields are looked at: size, encoding, JSON, duplicate keys."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        return FieldError(loc="(message)", msg=f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} (1 MiB)")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        text.encode("utf-8")  # a str from Python may hold lone surrogates
        json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except UnicodeError as exc:
        return FieldError(loc="(message)", msg=f"not valid UTF-8 (at byte {getattr(exc, 'start', '?')})")
    except _DuplicateKey as exc:
        name = str(exc)
        where = name if name in CONTRACT_NAMES else UNKNOWN_FIELD
        return FieldError(loc=where, msg="duplicate key in one JSON object (the contract forbids repeating a key)")
    except RecursionError:
        return FieldError(loc="(message)", msg="not a JSON object: nested too deeply")
    except ValueError:
        return None  # pydantic reports JSON syntax errors with their position
    return None


def parse_event(raw: bytes | str, now: datetime | None = None) -> tuple[Event | None, list[FieldError]]:
    """Validate one message: (event, []) when it keeps the contract, else (None, errors).

    `now` is the moment of validation (the bound on occurred_at); the wall clock when not given.
    Never raises on bad input: a message that is not JSON, or not an object, is an error too.
    At most MAX_ERRORS errors are reported; the last then says how many more there were.
    """
    framing = _framing_error(raw)
    if framing is not None:
        return None, [framing]
    try:
        return EVENT_ADAPTER.validate_json(raw, context={"now": now}), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if len(errors) == 1 and errors[0]["type"] in {"json_invalid", "model_attributes_type"}:
            return None, [FieldError(loc="(message)", msg=f"not a JSON object: {errors[0]['msg']}")]
        friendly = [_friendly(e) for e in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            friendly[-1] = FieldError(loc="(message)", msg=f"{len(errors) - MAX_ERRORS + 1} more errors not listed")
        return None, friendly


def event_identifiers(event: Event) -> list[Identifier]:
    """The identifiers an event names one child by (the child's, or the link's)."""
    if isinstance(event, IdentityLinkedEvent):
        return list(event.payload.identifiers)
    assert isinstance(event, ChildEvent)
    return list(event.child.identifiers)


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for arg in _type_args(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg, seen)
    return names


def _type_args(annotation: object) -> list[object]:
    from typing import get_args

    found = [annotation]
    for arg in get_args(annotation):
        found += _type_args(arg)
    return found


UNKNOWN_FIELD = "<unknown field>"
# Every name the contract uses for a field: an error path made of anything else is partner text.
CONTRACT_NAMES: frozenset[str] = frozenset(
    set().union(*(_field_names(cls, set()) for cls in EVENT_CLASSES.values())) | set(EVENT_TYPES)
)


def contract_path(loc: str) -> str:
    """An error path with every part that is not a contract name or a list index replaced by
    UNKNOWN_FIELD, so a dead letter never carries a partner's own text (a key may be a name)."""
    if loc == "(message)":
        return loc
    return ".".join(p if p in CONTRACT_NAMES or p.isdigit() else UNKNOWN_FIELD for p in loc.split("."))

