"""
No real person's data: every identifier is generated here (NHS numbers that pass modulus 11, UPNs
with correct check letters), no event names a person, ages travel as a birth month only, and every
premises name is fictional and says so. The same seed and arguments give byte-identical output:
one `random.Random(seed)` drives everything, including the event ids, and the wall clock is never read.

Planted for the pipeline to find: three hotspots (a hotel, a takeaway and a taxi firm, each linked to
four to six different children within three weeks), children known by different agencies under
different identifiers and linked later by the MASH (identity.linked), late arrivals (the stream is in
recorded_at order), a few exact re-sends, and a configurable share of malformed messages.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any

from models.events import nhs_check_digit, upn_check_letter
from simulator.city import (
    BACKGROUND_CATEGORIES,
    CP_END_REASONS,
    CSE_AGES,
    CSE_INDICATORS,
    CSE_TOOLS,
    DA_HOURS,
    DECLINE_REASONS,
    DEFAULT_CITY,
    DISCLOSURES,
    HOTSPOT_ROLES,
    HOTSPOTS,
    INWARD_LETTERS,
    MISSING_AGES,
    MISSING_HOURS,
    NAME_PARTS,
    OWN_SCHEME,
    START_WEIGHTING,
    SYSTEMS,
    WARD_BY_NAME,
    WARDS,
    CityConfig,
    Ward,
    stamp,
)
from simulator.faults import Doc, break_message, dump
from streams.core.clock import encompass_deadline

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MAX_LATENESS = timedelta(days=6, hours=20)  # the contract allows up to 7 days late


# --- what the simulation tracks -------------------------------------------------------------------


@dataclass(frozen=True)
class Premises:
    category: str
    ref: str
    name: str | None = None


@dataclass(frozen=True)
class Place:
    ward: Ward
    postcode: str
    lat: float
    lon: float
    premises: Premises | None = None


@dataclass(eq=False)
class Child:
    born: int  # birth month as year * 12 + month - 1; only the month ever leaves as "YYYY-MM"
    sex: str
    ids: dict[str, str]  # scheme -> value, as each agency knows it
    fragmented: bool
    looked_after: bool = False
    learning_disability: bool = False
    household: Household | None = None
    placement: Place | None = None  # where a looked-after child lives
    cse_level: str = "none"
    haunts: list[Place] = field(default_factory=list)  # where a frequently missing child tends to go
    missing_spells: list[tuple[datetime, datetime]] = field(default_factory=list)

    @property
    def birth_month(self) -> str:
        return f"{self.born // 12:04d}-{self.born % 12 + 1:02d}"

    def age(self, at: datetime) -> int:
        """Whole years at `at` (to the month; negative before birth)."""
        return (at.year * 12 + at.month - 1 - self.born) // 12


@dataclass(eq=False)
class Household:
    home: Place
    children: list[Child]
    da_incidents: list[datetime] = field(default_factory=list)


@dataclass(eq=False)
class Draft:
    """One event before it is written: its arrival time orders the stream."""

    seq: int
    doc: Doc
    occurred: datetime
    arrival: datetime
    child: Child | None
    ids: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SimMessage:
    """One line of output. `fault` names the contract rule a malformed message breaks."""

    arrival: datetime
    raw: bytes
    event_type: str
    fault: str | None = None
    duplicate: bool = False


# --- small helpers ---------------------------------------------------------------------------------


def _weighted(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # normal approximation: exact enough, and fast
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def nhs_number(rng: random.Random) -> str:
    """A valid NHS number: nine random digits (starting 4 or 6 like England's) and the contract's check digit."""
    while True:
        first_nine = rng.choice("46") + "".join(rng.choice("0123456789") for _ in range(8))
        check = nhs_check_digit(first_nine)
        if check is not None:
            return f"{first_nine}{check}"


def upn(rng: random.Random, la_code: str, year_allocated: int) -> str:
    """A DfE UPN: check letter + LA code + establishment + two-digit year + serial."""
    establishment = rng.choice((rng.randrange(2000, 3000), rng.randrange(4000, 4200)))
    body = f"{la_code}{establishment:04d}{year_allocated % 100:02d}{rng.randrange(1000):03d}"
    return upn_check_letter(body) + body


# --- the simulation ------------------------------------------------------------------------------


class CitySimulation:
    """Builds every event for the period as drafts; `messages()` orders, breaks and writes them."""

    def __init__(self, rng: random.Random, start: datetime, days: int, config: CityConfig) -> None:
        self.rng = rng
        self.start = start.astimezone(UTC)
        self.end = self.start + days * DAY
        self.days = days
        self.config = config
        self.zone = config.zone
        self.population = max(180, round(config.children * config.scale))
        self.children: dict[int, Child] = {}
        self.drafts: list[Draft] = []
        self.used_ids: set[str] = set()
        self.counters: Counter[str] = Counter()
        self.background = self._background_premises()
        self.childrens_homes = [self._place(premises=Premises("childrens_home", f"CH{n:03d}")) for n in range(1, 9)]
        self.frequent: list[Child] = []
        self.da_households: list[Household] = []
        self.cp_spells: list[tuple[Child, datetime, datetime]] = []

    # -- run

    def run(self) -> None:
        self._child_protection()
        self._frequent_cohort()
        self._plant_hotspots()
        self._missing()
        self._cse()
        self._domestic_abuse()
        self._mash_links()

    # -- places

    def _place(self, ward: Ward | None = None, premises: Premises | None = None) -> Place:
        rng = self.rng
        ward = ward or rng.choices(WARDS, weights=[w.weight for w in WARDS])[0]
        postcode = f"{rng.choice(ward.sectors)}{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
        lat = min(52.448, max(52.372, ward.lat + rng.uniform(-0.006, 0.006)))
        lon = min(-1.432, max(-1.578, ward.lon + rng.uniform(-0.008, 0.008)))
        return Place(ward, postcode, round(lat, 5), round(lon, 5), premises)

    def _background_premises(self) -> list[Place]:
        count = max(200, round(2000 * self.config.scale))
        places = []
        for n in range(1, count + 1):
            category = _weighted(self.rng, BACKGROUND_CATEGORIES)
            name = None
            if category in NAME_PARTS[1]:
                name = f"{self.rng.choice(NAME_PARTS[0])} {NAME_PARTS[1][category]} {n:03d} (fictional)"
            places.append(self._place(premises=Premises(category, f"PREM{n:05d}", name)))
        return places

    def _location(self, place: Place, detail: float = 0.8) -> Doc:
        """A Location object; partner systems fill in more or less of it."""
        rng = self.rng
        doc: Doc = {}
        if rng.random() < detail or place.premises is not None:
            doc["postcode"] = place.postcode
        if rng.random() < detail:
            doc["ward_code"] = place.ward.code
        if rng.random() < 0.5 or not doc:
            doc["ward_name"] = place.ward.name
        if rng.random() < detail:
            doc["lat"], doc["lon"] = place.lat, place.lon
        if place.premises is not None:
            premises: Doc = {"category": place.premises.category}
            if place.premises.name:
                premises["name"] = place.premises.name
            premises["ref"] = place.premises.ref
            doc["premises"] = premises
        return doc

    # -- children

    def _unique(self, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value

    def _new_child(self, age: int) -> Child:
        """A child aged `age` whole years at the period start (-1: not yet born)."""
        rng, config = self.rng, self.config
        born = self.start.year * 12 + self.start.month - 1 - age * 12 - rng.randrange(12)
        if age < 0:
            born = self.start.year * 12 + self.start.month - 1 + rng.randrange(1, 6)
        year = born // 12
        ids = {"la_person_id": self._unique(lambda: f"LA{rng.randrange(10**6, 10**7):07d}")}
        if age >= 0:
            ids["nhs_number"] = self._unique(lambda: nhs_number(rng))
            ids["police_person_id"] = self._unique(lambda: f"WM{rng.randrange(10**7, 10**8)}")
            if rng.random() < 0.3:
                ids["health_local_id"] = self._unique(lambda: f"RKB{rng.randrange(10**6, 10**7)}")
        if age >= 4:
            ids["upn"] = self._unique(lambda: upn(rng, config.la_code, year + 5))
        sex = "U" if age < 0 else rng.choices("FMX", weights=(499, 499, 2))[0]
        return Child(
            born=born,
            sex=sex,
            ids=ids,
            fragmented=age >= 0 and rng.random() < config.fragmented_identity_share,
            learning_disability=rng.random() < 0.04,
        )

    def _child_of_age(self, age: int) -> Child:
        """A child of that age from the city's population (the same child may be drawn again)."""
        age = min(17, max(0, age))
        low, high = age * self.population // 18, (age + 1) * self.population // 18
        slot = self.rng.randrange(low, high)
        if slot not in self.children:
            self.children[slot] = self._new_child(age)
        return self.children[slot]

    def _household(self, child: Child) -> Household:
        """The child's household, created with any siblings the first time it is needed."""
        if child.household is None:
            household = Household(self._place(premises=Premises("home", f"HH{self._count('household'):06d}")),
                                  [child])
            child.household = household
            age = child.age(self.start)
            for _ in range(_weighted(self.rng, {0: 40, 1: 33, 2: 18, 3: 9})):
                sibling_age = max(0, age) + self.rng.choice((-1, 1)) * self.rng.randint(1, 7)
                sibling = self._child_of_age(sibling_age if 0 <= sibling_age <= 17 else 2 * max(0, age) - sibling_age)
                if sibling.household is None and sibling is not child:
                    sibling.household = household
                    household.children.append(sibling)
        return child.household

    def _home(self, child: Child) -> Place:
        if child.looked_after and child.placement is not None:
            return child.placement
        return self._household(child).home

    def _look_after(self, child: Child) -> None:
        if child.looked_after:
            return
        child.looked_after = True
        kind = _weighted(self.rng, {"childrens_home": 40, "foster_home": 50, "supported_accommodation": 10})
        if kind == "childrens_home":
            child.placement = self.rng.choice(self.childrens_homes)
        else:
            child.placement = self._place(premises=Premises(kind, f"PL{self._count('placement'):05d}"))

    # -- events

    def _count(self, name: str) -> int:
        self.counters[name] += 1
        return self.counters[name]

    def _delay(self) -> timedelta:
        """How long after the fact a source records it: minutes mostly, sometimes days."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.90:
            return rng.uniform(1, 45) * MINUTE
        if roll < 0.97:
            return rng.uniform(1, 6) * HOUR
        if roll < 0.99:
            return rng.uniform(1, 3) * DAY
        return rng.uniform(3 * DAY / MINUTE, MAX_LATENESS / MINUTE) * MINUTE

    def _identifiers(self, child: Child, agency: str) -> list[tuple[str, str]]:
        """What an agency sends: its own id, plus the NHS number unless this child is 'fragmented'."""
        scheme = OWN_SCHEME[agency] if OWN_SCHEME[agency] in child.ids else "la_person_id"
        ids = [(scheme, child.ids[scheme])]
        if agency == "health" and "health_local_id" in child.ids and self.rng.random() < 0.5:
            ids.append(("health_local_id", child.ids["health_local_id"]))
        if not child.fragmented and scheme != "nhs_number" and "nhs_number" in child.ids:
            ids.append(("nhs_number", child.ids["nhs_number"]))
        return ids

    def _nhs_as_written(self, scheme: str, value: str) -> str:
        if scheme == "nhs_number" and self.rng.random() < 0.1:
            return f"{value[:3]} {value[3:6]} {value[6:]}"  # spaces are allowed on input
        return value

    def _child_doc(self, child: Child, agency: str, ids: list[tuple[str, str]]) -> Doc:
        rng = self.rng
        doc: Doc = {"identifiers": [{"scheme": s, "value": self._nhs_as_written(s, v)} for s, v in ids]}
        if rng.random() < 0.92:
            doc["birth_month"] = child.birth_month
        if rng.random() < 0.9:
            doc["sex"] = child.sex
        if agency in ("childrens_social_care", "police") or child.looked_after:
            doc["looked_after"] = child.looked_after
        if agency in ("childrens_social_care", "health", "education") and rng.random() < 0.6:
            doc["learning_disability"] = child.learning_disability
        return doc

    def _emit(
        self,
        event_type: str,
        occurred: datetime,
        agency: str,
        child: Child | None,
        payload: Doc,
        location: Doc | None = None,
        arrival: datetime | None = None,
    ) -> Draft | None:
        """Draft one event; nothing that happens, or reaches the pipeline, after the period ends."""
        rng = self.rng
        occurred = _whole_seconds(occurred)
        arrival = _whole_seconds(max(arrival or occurred + self._delay(), occurred))
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        if occurred >= self.end or arrival >= self.end:
            return None
        doc: Doc = {
            "event_id": str(event_id),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": stamp(occurred, self.zone),
        }
        if rng.random() < 0.97:
            doc["recorded_at"] = stamp(arrival, self.zone)
        doc["source"] = {"agency": agency, "system": SYSTEMS[agency],
                         "record_ref": f"{SYSTEMS[agency].split('-')[0].upper()}-{self._count(agency):07d}"}
        ids: list[tuple[str, str]] = []
        if child is not None:
            ids = self._identifiers(child, agency)
            doc["child"] = self._child_doc(child, agency, ids)
        else:
            ids = [(i["scheme"], i["value"]) for i in payload["identifiers"]]
        if location:
            doc["location"] = location
        doc["payload"] = payload
        draft = Draft(len(self.drafts), doc, occurred, arrival, child, tuple(ids))
        self.drafts.append(draft)
        return draft

    def _moment(self, hour_weights: Sequence[float], within: tuple[datetime, datetime] | None = None) -> datetime:
        """A time in the window (default: the period) on a local hour drawn from `hour_weights`."""
        low, high = within or (self.start, self.end)
        for _ in range(20):
            day = (low + self.rng.uniform(0, (high - low) / MINUTE) * MINUTE).astimezone(self.zone).date()
            hour = self.rng.choices(range(24), weights=hour_weights)[0]
            local = datetime.combine(day, clock_time(hour, self.rng.randrange(60), self.rng.randrange(60)))
            moment = local.replace(tzinfo=self.zone).astimezone(UTC)
            if low <= moment < high:
                return moment
        return low + self.rng.uniform(0, (high - low) / MINUTE) * MINUTE

    def _office_hours(self, moment: datetime) -> datetime:
        """The same moment if it falls in office hours (Mon-Fri 09-17 local), else the next working morning."""
        local = moment.astimezone(self.zone)
        if local.weekday() < 5 and 9 <= local.hour < 17:
            return moment
        day = local.date() + (DAY if local.hour >= 17 else timedelta(0))
        while day.weekday() >= 5:
            day += DAY
        morning = datetime.combine(day, clock_time(9), tzinfo=self.zone).astimezone(UTC)
        return morning + self.rng.uniform(0, 7.5) * HOUR

    def _waking_hours(self, moment: datetime) -> datetime:
        """The same moment between 09:00 and 20:00 local, else that or the next morning (any day)."""
        local = moment.astimezone(self.zone)
        if 9 <= local.hour < 20:
            return moment
        day = local.date() + (DAY if local.hour >= 20 else timedelta(0))
        return datetime.combine(day, clock_time(9), tzinfo=self.zone).astimezone(UTC) + self.rng.uniform(0, 3) * HOUR

    # -- child protection plans

    def _child_protection(self) -> None:
        """The plans open at the period start (cp_active of them, sent with their real earlier start),
        then new plans as a Poisson stream at the rate that keeps about as many open."""
        config, rng = self.config, self.rng
        open_at_start = 0
        while open_at_start < round(config.cp_active * config.scale):
            # An open plan is picked in proportion to its length (gamma(3) for gamma(2) lengths),
            # and is a uniform way through it.
            length = rng.gammavariate(3.0, config.cp_mean_days / 2) * DAY
            open_at_start += self._cp_group(self._office_hours(self.start - rng.random() * length), length)
        plans_per_day = config.cp_active * config.scale / config.cp_mean_days
        moment = self.start + rng.expovariate(plans_per_day) * DAY
        while moment < self.end:
            length = rng.gammavariate(2.0, config.cp_mean_days / 2) * DAY
            moment += rng.expovariate(plans_per_day) * DAY * max(1, self._cp_group(self._office_hours(moment), length))

    def _cp_group(self, started: datetime, duration: timedelta) -> int:
        """One child's plan, sometimes with one or two siblings'; returns how many plans are sent."""
        config, rng = self.config, self.rng
        weights = [share * START_WEIGHTING.get(label, 1.0) for label, _, _, share in config.cp_age_bands]
        _, low, high, _ = rng.choices(config.cp_age_bands, weights=weights)[0]
        age_now = rng.randint(low, high) + max(0, (self.start - started).days // 365)
        if age_now > 17:
            return 0  # turned 18 before the period: that plan is long closed
        lead = self._new_child(-1) if low < 0 else self._child_of_age(age_now)
        if low < 0:  # unborn: expected a few months after the plan starts
            lead.born = started.year * 12 + started.month - 1 + rng.randrange(1, 6)
        household = self._household(lead)
        group = [lead]
        if rng.random() < config.cp_sibling_share:
            group += [c for c in household.children if c is not lead][: rng.choice((1, 1, 2))]
        category = rng.choices([c for c, _ in config.cp_categories], weights=[w for _, w in config.cp_categories])[0]
        previous = _weighted(rng, {1: 70, 2: 22, 3: 8}) if rng.random() < config.cp_repeat_share else 0
        return sum(self._cp_plan(child, started, duration, category, previous) for child in group)

    def _cp_plan(self, child: Child, started: datetime, duration: timedelta, category: str, previous: int) -> bool:
        rng = self.rng
        eighteenth = datetime(child.born // 12 + 18, child.born % 12 + 1, 1, 9, tzinfo=self.zone).astimezone(UTC)
        ended = min(started + duration, eighteenth)
        if ended <= self.start or ended <= started:
            return False  # closed before the period: the pipeline never hears of it
        if child.born > started.year * 12 + started.month - 1 + 9:
            return False  # a younger sibling not yet expected when the plan started (the contract's bound)
        plan_ref = f"CP{self._count('plan'):06d}"
        self.cp_spells.append((child, started, ended))
        # A plan open at the start is sent with the category it has now.
        self._emit("cp_plan.started", started, "childrens_social_care", child,
                   {"plan_ref": plan_ref, "category": category, "previous_plans": previous})
        if rng.random() < self.config.cp_category_change_share:
            changed = self._office_hours(started + rng.uniform(0.2, 0.9) * (ended - started))
            if self.start <= changed < ended:
                others = [c for c, _ in self.config.cp_categories if c != category]
                self._emit("cp_plan.category_changed", changed, "childrens_social_care", child,
                           {"plan_ref": plan_ref, "category": rng.choice(others)})
        if ended < self.end:
            reason = "reached 18" if ended == eighteenth else rng.choice(CP_END_REASONS[:4])
            if reason == "child became looked after":
                self._look_after(child)
            payload: Doc = {"plan_ref": plan_ref}
            if rng.random() < 0.8:
                payload["reason"] = reason
            self._emit("cp_plan.ended", self._office_hours(ended), "childrens_social_care", child, payload)
        return True

    def _on_plan(self, moment: datetime, min_age: int = 0) -> list[Child]:
        return [c for c, begun, ended in self.cp_spells if begun <= moment < ended and c.age(moment) >= min_age]

    # -- missing episodes and return interviews

    def _frequent_cohort(self) -> None:
        """The minority who go missing again and again: older, often looked after, often at CSE risk."""
        rng = self.rng
        size = max(8, round(self.config.frequent_missing_children * self.config.scale))
        while len(self.frequent) < size:
            child = self._child_of_age(_weighted(rng, MISSING_AGES))
            if child in self.frequent or child.age(self.start) < 11:
                continue
            if rng.random() < 0.45:
                self._look_after(child)
            child.cse_level = _weighted(rng, {"none": 40, "low": 35, "medium": 18, "high": 7})
            child.haunts = rng.sample(self.background, rng.randint(1, 3))
            self.frequent.append(child)

    def _missing(self) -> None:
        config, rng = self.config, self.rng
        total = config.missing_episodes_per_day * config.scale * self.days
        propensity = [rng.gammavariate(1.5, 1.0) for _ in self.frequent]
        for child, weight in zip(self.frequent, propensity, strict=True):
            for _ in range(_poisson(rng, total * config.frequent_missing_share * weight / sum(propensity))):
                self._episode(child, self._moment(MISSING_HOURS))
        for _ in range(_poisson(rng, total * (1 - config.frequent_missing_share))):
            started = self._moment(MISSING_HOURS)
            on_plan = self._on_plan(started, min_age=10)
            if on_plan and rng.random() < 0.06:
                child = rng.choice(on_plan)
            else:
                child = self._child_of_age(_weighted(rng, MISSING_AGES))
            self._episode(child, started)

    def _duration(self) -> timedelta:
        """Most children are back within hours; a few are away for more than a day."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.80:
            hours = rng.lognormvariate(math.log(3.5), 0.8)
        elif roll < 0.95:
            hours = rng.uniform(8, 24)
        elif roll < 0.99:
            hours = rng.uniform(24, 72)
        else:
            hours = rng.uniform(72, 240)
        return max(20 * MINUTE, hours * HOUR)

    def _free_start(self, child: Child, started: datetime, duration: timedelta) -> datetime | None:
        """Move a start past the child's other episodes: one child is not missing twice at once."""
        for _ in range(10):
            clash = next((s for s in child.missing_spells if started < s[1] and s[0] < started + duration), None)
            if clash is None:
                return started
            started = clash[1] + self.rng.uniform(3, 48) * HOUR
        return None

    def _last_seen(self, child: Child) -> Place:
        """Mostly home or the placement, else a street; now and then a named place, often a usual haunt."""
        roll = self.rng.random()
        if roll < 0.55:
            return self._home(child)
        if roll < 0.93:
            return self._place(self._home(child).ward if self.rng.random() < 0.6 else None)
        return self._haunt(child)

    def _haunt(self, child: Child) -> Place:
        if child.haunts and self.rng.random() < 0.8:
            return self.rng.choice(child.haunts)
        return self.rng.choice(self.background)

    def _episode(
        self, child: Child, started: datetime, plant: Place | None = None, roles: tuple[str, ...] = ()
    ) -> None:
        """missing.started, maybe a re-grade, missing.ended, and the return interview that follows."""
        rng = self.rng
        duration = rng.uniform(1.5, 20) * HOUR if plant else self._duration()
        free = self._free_start(child, started, duration)
        if free is None or free >= self.end:
            return
        started, ended = free, free + duration
        child.missing_spells.append((started, ended))
        episode_ref = f"MIS/{started.astimezone(self.zone).year}/{self._count('episode'):06d}"
        classification = "missing" if plant or rng.random() < 0.7 else "absent"
        if child.looked_after:
            setting = "care" if rng.random() < 0.9 else "education"
        else:
            setting = "education" if rng.random() < 0.08 else "home"
        agency = {"care": _weighted(rng, {"police": 75, "childrens_social_care": 25}),
                  "education": _weighted(rng, {"education": 60, "police": 40}),
                  "home": _weighted(rng, {"police": 92, "youth_justice": 4, "housing": 4})}[setting]
        if classification == "missing":
            risk = _weighted(rng, {"no_apparent_risk": 3, "low": 42, "medium": 45, "high": 10})
        else:
            risk = _weighted(rng, {"no_apparent_risk": 85, "low": 15})
        payload: Doc = {"episode_ref": episode_ref, "classification": classification, "setting": setting}
        if rng.random() < 0.92:
            payload["police_risk"] = risk
        seen = plant if plant and "seen" in roles else self._last_seen(child)
        self._emit("missing.started", started, agency, child, payload, self._location(seen))
        if classification == "missing" and duration > 2 * HOUR and rng.random() < 0.12:
            self._regrade(child, episode_ref, risk, started + rng.uniform(0.2, 0.8) * min(duration, 24 * HOUR))
        if ended >= self.end:
            return  # still missing when the period ends
        found = plant if plant and "found" in roles else (
            self._home(child) if rng.random() < 0.6 else self._last_seen(child))
        ender = "childrens_social_care" if setting == "care" and rng.random() < 0.2 else "police"
        self._emit("missing.ended", ended, ender, child, {"episode_ref": episode_ref}, self._location(found))
        named = plant if plant and "named" in roles else None
        self._return_interview(child, episode_ref, classification, ended, named)

    def _regrade(self, child: Child, episode_ref: str, risk: str, moment: datetime) -> None:
        grades = ["no_apparent_risk", "low", "medium", "high"]
        step = 1 if self.rng.random() < 0.65 else -1
        new = grades[min(3, max(0, grades.index(risk) + step))]
        if new == risk:
            new = grades[grades.index(risk) - step]
        self._emit("missing.risk_graded", moment, "police", child, {"episode_ref": episode_ref, "police_risk": new})

    def _return_interview(
        self, child: Child, episode_ref: str, classification: str, ended: datetime, named: Place | None
    ) -> None:
        """Offered within a day or so; mostly completed within 72 h, some late, some declined, some never."""
        rng = self.rng
        if not named and rng.random() > (0.93 if classification == "missing" else 0.35):
            return  # never offered
        agency = _weighted(rng, {"voluntary_sector": 55, "childrens_social_care": 45})
        offered = self._waking_hours(ended + rng.uniform(2, 30) * HOUR)
        self._emit("return_interview.offered", offered, agency, child, {"episode_ref": episode_ref})
        outcome = "in_time" if named else _weighted(rng, {"in_time": 70, "late": 12, "declined": 11, "never": 7})
        deadline = ended + 72 * HOUR
        if outcome == "declined":
            payload: Doc = {"episode_ref": episode_ref}
            reason = rng.choice(DECLINE_REASONS)
            if reason:
                payload["reason"] = reason
            declined = self._waking_hours(offered + rng.uniform(0.5, 36) * HOUR)
            self._emit("return_interview.declined", declined, agency, child, payload)
        elif outcome != "never":
            if outcome == "in_time":
                done = self._waking_hours(offered + rng.uniform(0.05, 0.9) * max(HOUR, deadline - offered))
                if done > deadline:
                    done = offered + rng.uniform(0.5, 2) * HOUR
            else:
                done = self._waking_hours(deadline + rng.uniform(1, 168) * HOUR)
            self._emit("return_interview.completed", done, agency, child,
                       self._interview_findings(child, episode_ref, named))

    def _interview_findings(self, child: Child, episode_ref: str, named: Place | None) -> Doc:
        rng = self.rng
        disclosures: list[str] = []
        if named or rng.random() < 0.35:
            pool = dict(DISCLOSURES)
            disclosures = sorted({_weighted(rng, pool) for _ in range(rng.randint(1, 3))})
        if named:
            disclosures = sorted(set(disclosures) | {rng.choice(("cse", "adults_of_concern", "missing_with_peers"))})
        places = [self._location(self._haunt(child), 0.6) for _ in range(rng.random() < 0.15)]
        if named:
            places.append(self._location(named, 0.9))
        payload: Doc = {"episode_ref": episode_ref}
        if disclosures:
            payload["disclosures"] = disclosures
        if places:
            payload["places"] = places
        return payload

    def _plant_hotspots(self) -> None:
        """Several different children last seen, found or named at one place within three weeks, in the
        last weeks of the period: emerging now, as the CMOG would want to see them."""
        rng = self.rng
        usable = self.end - self.start - 5 * DAY
        window = min(21 * DAY, usable)
        if window < DAY:
            return
        candidates = [c for c in self.frequent if c.age(self.start) >= 12] or self.frequent
        for n, (category, name, ward) in enumerate(HOTSPOTS[: self.config.hotspots], start=1):
            place = self._place(WARD_BY_NAME[ward], Premises(category, f"HOT{n:03d}", name))
            recent = min(usable - window, 14 * DAY)
            opens = self.start + usable - window - rng.uniform(0, recent / HOUR) * HOUR
            children = rng.sample(candidates, min(len(candidates), rng.randint(4, 6)))
            for child in children:
                roles = rng.choice(HOTSPOT_ROLES.get(category, (("seen",), ("named",), ("found",))))
                started = self._moment(MISSING_HOURS, (opens, opens + window))
                self._episode(child, started, place, roles)
                if rng.random() < 0.6:
                    child.cse_level = rng.choice(("medium", "high"))
                    self._assess(child, self._office_hours(started + rng.uniform(1, 6) * DAY), child.cse_level)

    # -- child sexual exploitation risk

    def _cse(self) -> None:
        config, rng = self.config, self.rng
        for _ in range(_poisson(rng, config.cse_assessments_per_day * config.scale * self.days)):
            moment = self._office_hours(self._moment([1] * 24))
            if rng.random() < 0.45:
                child = rng.choice(self.frequent)
                level = self._next_level(child.cse_level)
            else:
                child = self._child_of_age(_weighted(rng, CSE_AGES))
                level = _weighted(rng, {"none": 45, "low": 35, "medium": 15, "high": 5})
            child.cse_level = level
            self._assess(child, moment, level)

    def _next_level(self, level: str) -> str:
        levels = ["none", "low", "medium", "high"]
        roll = self.rng.random()
        step = 1 if roll < 0.25 else -1 if roll < 0.40 else 0
        return levels[min(3, max(0, levels.index(level) + step))]

    def _assess(self, child: Child, moment: datetime, level: str) -> None:
        rng = self.rng
        agency = _weighted(rng, {"childrens_social_care": 55, "police": 15, "health": 12, "voluntary_sector": 8,
                                 "youth_justice": 6, "education": 4})
        payload: Doc = {"level": level}
        if rng.random() < 0.8:
            payload["tool"] = rng.choice(CSE_TOOLS)
        count = {"none": 0, "low": rng.randint(0, 2), "medium": rng.randint(1, 4), "high": rng.randint(2, 6)}[level]
        if count:
            payload["indicators"] = rng.sample(CSE_INDICATORS, count)
        self._emit("cse.risk_assessed", moment, agency, child, payload)

    # -- domestic abuse

    def _domestic_abuse(self) -> None:
        config, rng = self.config, self.rng
        incidents = _poisson(rng, config.da_incidents_per_day * config.scale * self.days)
        for moment in sorted(self._moment(DA_HOURS) for _ in range(incidents)):
            roll = rng.random()
            on_plan = self._on_plan(moment)
            if roll < config.da_repeat_share and self.da_households:
                household = rng.choice(self.da_households)
            elif roll < config.da_repeat_share + 0.12 and on_plan:
                household = self._household(rng.choice(on_plan))
            else:
                household = self._household(self._child_of_age(rng.randrange(18)))
            if not household.da_incidents:
                self.da_households.append(household)
            household.da_incidents.append(moment)
            self._da_incident(household, moment)

    def _da_incident(self, household: Household, moment: datetime) -> None:
        """One event per child in the household. Police tell each school-age child's school (Encompass),
        and the record goes in once they have: so a late or missing notification shows in the event."""
        rng = self.rng
        incident_ref = f"DA/{moment.astimezone(self.zone).year % 100:02d}/{self._count('incident'):06d}"
        band = _weighted(rng, {"standard": 60, "medium": 25, "high": 15})
        score = {"standard": rng.randint(0, 9), "medium": rng.randint(10, 13), "high": rng.randint(14, 24)}[band]
        risk = band if rng.random() < 0.96 else "high"  # professional judgement can raise the grade
        marac = rng.random() < {"standard": 0.005, "medium": 0.05, "high": 0.85}[risk]
        agency = _weighted(rng, {"police": 85, "health": 5, "housing": 5, "voluntary_sector": 5})
        notified = self._encompass_notice(moment) if agency == "police" else None
        arrival = notified + rng.uniform(5, 90) * MINUTE if notified else moment + self._delay()
        location = self._location(household.home)
        for child in household.children:
            payload: Doc = {"incident_ref": incident_ref, "child_present": rng.random() < 0.7, "marac_referred": marac}
            if rng.random() < 0.95:
                payload["dash_score"] = score
            if rng.random() < 0.95:
                payload["dash_risk"] = risk
            if notified and 4 <= child.age(moment) <= 17:
                payload["encompass_notified_at"] = stamp(_whole_seconds(notified), self.zone)
            self._emit("da.incident", moment, agency, child, payload, location, arrival)

    def _encompass_notice(self, incident: datetime) -> datetime | None:
        """When the police told the school: mostly that evening or first thing, some late, some never."""
        rng = self.rng
        deadline = encompass_deadline(incident, self.zone)
        notice = _weighted(rng, {"evening": 55, "morning": 25, "late": 10, "never": 10})
        if notice == "evening":
            return incident + rng.uniform(0.3, 3) * HOUR
        if notice == "morning":
            return deadline - rng.uniform(0.2, 3) * HOUR
        if notice == "late":
            return deadline + rng.uniform(0.5, 72) * HOUR
        return None

    # -- identity: the MASH links what agencies hold apart

    def _mash_links(self) -> None:
        """For children agencies know by their own ids only: once two ids are in use, the MASH links them."""
        rng = self.rng
        # The child's LA id -> each identifier value sent for the child -> when it was first used.
        first_seen: dict[str, dict[str, datetime]] = {}
        children: dict[str, Child] = {}
        for draft in self.drafts:
            if draft.child is None or not draft.child.fragmented:
                continue
            key = draft.child.ids["la_person_id"]
            children[key] = draft.child
            seen = first_seen.setdefault(key, {})
            for _, value in draft.ids:
                seen[value] = min(seen.get(value, draft.occurred), draft.occurred)
        for key, seen in first_seen.items():
            values = list(seen)
            if len(values) < 2 or rng.random() > self.config.mash_link_share:
                continue
            second = sorted(seen.values())[1]
            linked_at = self._office_hours(second + rng.uniform(0.3, 14) * DAY)
            child = children[key]
            by_value = {value: scheme for scheme, value in child.ids.items()}
            identifiers = [{"scheme": by_value[v], "value": self._nhs_as_written(by_value[v], v)} for v in values]
            if "nhs_number" in child.ids and child.ids["nhs_number"] not in values and rng.random() < 0.5:
                identifiers.append({"scheme": "nhs_number", "value": child.ids["nhs_number"]})
            self._emit("identity.linked", linked_at, "childrens_social_care", None, {"identifiers": identifiers})

    # -- the stream

    def messages(self, malformed_share: float) -> list[SimMessage]:
        """Drafts in arrival order, some broken, a few sent twice, as JSON Lines bytes."""
        rng = self.rng
        ordered = sorted(self.drafts, key=lambda d: (d.arrival, d.occurred, d.seq))
        out: list[SimMessage] = []
        for draft in ordered:
            fault = None
            raw = dump(draft.doc)
            if rng.random() < malformed_share:
                fault, raw = break_message(draft.doc, rng, self.zone)
            out.append(SimMessage(draft.arrival, raw, draft.doc["event_type"], fault))
        resent = [
            SimMessage(m.arrival + rng.uniform(1, 360) * MINUTE, m.raw, m.event_type, None, duplicate=True)
            for m in out
            if m.fault is None and rng.random() < self.config.duplicate_share
        ]
        resent = [m for m in resent if m.arrival < self.end]
        return sorted(out + resent, key=lambda m: m.arrival)  # stable: ties keep their order


# --- the API -------------------------------------------------------------------------------------


def generate(
    days: int, seed: int, start: datetime, malformed_share: float = 0.02, config: CityConfig = DEFAULT_CITY
) -> list[SimMessage]:
    """Every message of a simulated period, in stream (recorded_at) order, with what each one is."""
    if days <= 0:
        raise ValueError("days must be positive")
    if not 0.0 <= malformed_share <= 1.0:
        raise ValueError("malformed_share must be between 0 and 1")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if config.scale <= 0:
        raise ValueError("scale must be positive")
    city = CitySimulation(random.Random(seed), start, days, config)
    city.run()
    return city.messages(malformed_share)


def simulate(
    days: int, seed: int, start: datetime, malformed_share: float = 0.02, config: CityConfig = DEFAULT_CITY
) -> Iterator[bytes]:
    """JSON Lines messages (bytes, no newline) for `days` from `start`, in recorded_at order.

    Deterministic: the same arguments give byte-identical output. Plans open at `start` are sent
    with their real (earlier) start, so the stream opens with them.
    """
    for message in generate(days, seed, start, malformed_share, config):
        yield message.raw



def summary(messages: Sequence[SimMessage]) -> str:
    by_type = Counter(m.event_type for m in messages)
    malformed = sum(1 for m in messages if m.fault)
    duplicates = sum(1 for m in messages if m.duplicate)
    lines = [f"simulated {len(messages)} messages: {malformed} malformed, {duplicates} re-sent duplicates"]
    lines += [f"  {event_type:<28} {count:>7}" for event_type, count in sorted(by_type.items())]
    return "\n".join(lines)
