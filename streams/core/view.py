"""One child's picture, derived by folding its facts in (occurred_at, event_id) order. Pure.

Nothing here depends on the order facts arrived in: a child's state stores facts, and every
episode, plan, incident, CSE history and flag is re-derived from them. Events attach to their
episode, plan or incident by ref, whatever their order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, TypeVar

from models.derived import Fact
from models.events import CseLevel, PoliceRisk

EPISODE_TYPES = frozenset(
    {
        "missing.started",
        "missing.risk_graded",
        "missing.ended",
        "return_interview.offered",
        "return_interview.completed",
        "return_interview.declined",
    }
)
INTERVIEW_DONE = frozenset({"return_interview.completed", "return_interview.declined"})
PLAN_TYPES = frozenset({"cp_plan.started", "cp_plan.category_changed", "cp_plan.ended"})
FlagName = Literal["birth_month", "sex", "looked_after", "learning_disability"]
FLAGS: tuple[FlagName, ...] = ("birth_month", "sex", "looked_after", "learning_disability")


def fact_order(fact: Fact) -> tuple[datetime, str]:
    return (fact.occurred_at, fact.event_id)


def sort_facts(facts: Iterable[Fact]) -> list[Fact]:
    return sorted(facts, key=fact_order)


@dataclass(frozen=True)
class EpisodeView:
    """A missing episode: its first start and first end, grades, interviews, data-quality flags."""

    ref: str
    facts: tuple[Fact, ...]
    start: Fact | None
    end: Fact | None
    interviews: tuple[Fact, ...]  # offered / completed / declined, in time order
    data_quality: tuple[str, ...]

    @property
    def met(self) -> Fact | None:
        """The first completed or declined return interview (either meets the RHI need)."""
        return next((f for f in self.interviews if f.event_type in INTERVIEW_DONE), None)

    @property
    def risks(self) -> list[tuple[datetime, PoliceRisk, Fact]]:
        """Police risk as it changed: the start's grade, then each re-grade, in time order."""
        return [
            (f.occurred_at, f.police_risk, f)
            for f in self.facts
            if f.police_risk is not None and f.event_type in {"missing.started", "missing.risk_graded"}
        ]

    @property
    def opened_at(self) -> datetime | None:
        """When the episode is known to have been open from: its start, else its first grade."""
        if self.start is not None:
            return self.start.occurred_at
        grades = [f for f in self.facts if f.event_type == "missing.risk_graded"]
        return grades[0].occurred_at if grades else None

    def open_at(self, moment: datetime) -> bool:
        opened = self.opened_at
        return opened is not None and opened <= moment and (self.end is None or self.end.occurred_at > moment)


@dataclass(frozen=True)
class PlanView:
    ref: str
    facts: tuple[Fact, ...]
    start: Fact | None
    end: Fact | None

    def active_at(self, moment: datetime) -> bool:
        """Started at or before `moment` and not ended by then (a plan with no start is never active)."""
        return (
            self.start is not None
            and self.start.occurred_at <= moment
            and (self.end is None or self.end.occurred_at > moment)
        )

    def category_at(self, moment: datetime) -> Fact | None:
        changes = [f for f in self.facts if f.cp_category is not None and f.occurred_at <= moment]
        return changes[-1] if changes else None


@dataclass(frozen=True)
class IncidentView:
    """A DA incident: every da.incident event with its incident_ref (the first is the incident)."""

    ref: str
    facts: tuple[Fact, ...]

    @property
    def first(self) -> Fact:
        return self.facts[0]

    @property
    def at(self) -> datetime:
        return self.facts[0].occurred_at

    @property
    def child_present(self) -> bool:
        """Present if any report of the incident says so (a later correction cannot un-see a child)."""
        return any(f.child_present for f in self.facts)

    @property
    def notified(self) -> tuple[datetime, Fact] | None:
        """The earliest encompass_notified_at any report of the incident carries, and that report."""
        stamped = [(f.encompass_notified_at, f) for f in self.facts if f.encompass_notified_at is not None]
        if not stamped:
            return None
        return min(stamped, key=lambda pair: (pair[0], fact_order(pair[1])))


GroupView = TypeVar("GroupView", EpisodeView, PlanView, IncidentView)


@dataclass(frozen=True)
class ChildView:
    key: str
    facts: tuple[Fact, ...]
    episodes: dict[str, EpisodeView]
    plans: dict[str, PlanView]
    incidents: dict[str, IncidentView]
    assessments: tuple[Fact, ...]
    flags: dict[FlagName, tuple[Fact, ...]] = field(default_factory=dict)  # facts carrying each flag

    def flag_fact(self, name: FlagName, moment: datetime | None = None) -> Fact | None:
        """The latest fact carrying `name` at or before `moment` (None: the latest of all)."""
        carrying = self.flags.get(name, ())
        if moment is not None:
            return latest_at(carrying, moment)
        return carrying[-1] if carrying else None

    def flag(self, name: FlagName, moment: datetime | None = None) -> object:
        carrier = self.flag_fact(name, moment)
        return getattr(carrier, name) if carrier is not None else None

    @property
    def birth_month(self) -> str | None:
        """The latest birth month reported (a birth month does not change with time, so not 'as of')."""
        carrier = self.flag_fact("birth_month")
        return carrier.birth_month if carrier is not None else None

    def cse_at(self, moment: datetime) -> Fact | None:
        """The latest CSE assessment at or before `moment` (binary search: assessments are in order)."""
        return latest_at(self.assessments, moment)

    def cse_level_at(self, moment: datetime) -> CseLevel:
        assessment = self.cse_at(moment)
        return assessment.cse_level if assessment is not None and assessment.cse_level else CseLevel.none

    def active_plans(self, moment: datetime) -> list[PlanView]:
        return [plan for plan in self.plans.values() if plan.active_at(moment)]


def latest_at(ordered: tuple[Fact, ...], moment: datetime) -> Fact | None:
    """The last of facts in (occurred_at, event_id) order that occurred at or before `moment`."""
    index = bisect_left(ordered, (moment, "\U0010ffff"), key=fact_order)
    return ordered[index - 1] if index else None


def _episode(ref: str, facts: list[Fact]) -> EpisodeView:
    starts = [f for f in facts if f.event_type == "missing.started"]
    ends = [f for f in facts if f.event_type == "missing.ended"]
    flags: list[str] = []
    # Replaying the episode in time order is what makes a flag clear when a late start arrives.
    started = ended = False
    for fact in facts:
        if fact.event_type == "missing.started":
            if started and not ended:
                flags.append("started again while open")
            elif ended:
                flags.append("started again after it ended")
            started = True
        elif fact.event_type == "missing.ended":
            if ended:
                flags.append("ended more than once")
            elif not started:
                flags.append("ended without a start" if not starts else "ended before it started")
            ended = True
    done = [f for f in facts if f.event_type in INTERVIEW_DONE]
    if done and ends and done[0].occurred_at < ends[0].occurred_at:
        flags.append("interview recorded before the return")
    return EpisodeView(
        ref=ref,
        facts=tuple(facts),
        start=starts[0] if starts else None,
        end=ends[0] if ends else None,
        interviews=tuple(f for f in facts if f.event_type.startswith("return_interview.")),
        data_quality=tuple(dict.fromkeys(flags)),
    )


def _plan(ref: str, group: list[Fact]) -> PlanView:
    return PlanView(
        ref=ref,
        facts=tuple(group),
        start=next((f for f in group if f.event_type == "cp_plan.started"), None),
        end=next((f for f in group if f.event_type == "cp_plan.ended"), None),
    )


def _inserted(ordered: tuple[Fact, ...], fact: Fact) -> tuple[Fact, ...]:
    as_list = list(ordered)
    insort(as_list, fact, key=fact_order)
    return tuple(as_list)


def _regroup(groups: dict[str, GroupView], ref: str, group: GroupView) -> dict[str, GroupView]:
    """`groups` with `group` put in at `ref`, in the order `derive` gives: by each group's first fact."""
    before = groups.get(ref)
    updated = {**groups, ref: group}
    if before is not None and before.facts[0] is group.facts[0]:
        return updated  # same first fact: same place
    if before is None and all(fact_order(other.facts[0]) < fact_order(group.facts[0]) for other in groups.values()):
        return updated  # a new group that starts last: appended, as derive would
    return dict(sorted(updated.items(), key=lambda item: fact_order(item[1].facts[0])))


def add_fact(view: ChildView, fact: Fact) -> ChildView:
    """The view with one more fact (not already in it), wherever it sorts: the same as `derive` over
    all the facts, but only the fact's own episode, plan or incident is folded again. Every other
    part of the view is shared with `view` (the incremental path; `derive` is the full recompute)."""
    changes: dict[str, object] = {"facts": _inserted(view.facts, fact)}
    if fact.event_type in EPISODE_TYPES and fact.episode_ref is not None:
        ref = fact.episode_ref
        episode = view.episodes.get(ref)
        group = _inserted(episode.facts if episode is not None else (), fact)
        changes["episodes"] = _regroup(view.episodes, ref, _episode(ref, list(group)))
    elif fact.event_type in PLAN_TYPES and fact.plan_ref is not None:
        ref = fact.plan_ref
        plan = view.plans.get(ref)
        group = _inserted(plan.facts if plan is not None else (), fact)
        changes["plans"] = _regroup(view.plans, ref, _plan(ref, list(group)))
    elif fact.event_type == "da.incident" and fact.incident_ref is not None:
        ref = fact.incident_ref
        incident = view.incidents.get(ref)
        group = _inserted(incident.facts if incident is not None else (), fact)
        changes["incidents"] = _regroup(view.incidents, ref, IncidentView(ref=ref, facts=group))
    if fact.event_type == "cse.risk_assessed" and fact.cse_level is not None:
        changes["assessments"] = _inserted(view.assessments, fact)
    carried = [name for name in FLAGS if getattr(fact, name) is not None]
    if carried:
        changes["flags"] = {
            name: _inserted(view.flags.get(name, ()), fact) if name in carried else view.flags.get(name, ())
            for name in FLAGS
        }
    return replace(view, **changes)  # type: ignore[arg-type]


def derive(key: str, facts: Iterable[Fact]) -> ChildView:
    """Fold a child's facts (any order, no duplicates) into its view."""
    ordered = sort_facts(facts)
    episode_facts: dict[str, list[Fact]] = {}
    plan_facts: dict[str, list[Fact]] = {}
    incident_facts: dict[str, list[Fact]] = {}
    flags: dict[FlagName, list[Fact]] = {name: [] for name in FLAGS}
    for fact in ordered:
        if fact.event_type in EPISODE_TYPES and fact.episode_ref is not None:
            episode_facts.setdefault(fact.episode_ref, []).append(fact)
        elif fact.event_type in PLAN_TYPES and fact.plan_ref is not None:
            plan_facts.setdefault(fact.plan_ref, []).append(fact)
        elif fact.event_type == "da.incident" and fact.incident_ref is not None:
            incident_facts.setdefault(fact.incident_ref, []).append(fact)
        for name in FLAGS:
            if getattr(fact, name) is not None:
                flags[name].append(fact)
    plans = {ref: _plan(ref, group) for ref, group in plan_facts.items()}
    return ChildView(
        key=key,
        facts=tuple(ordered),
        episodes={ref: _episode(ref, group) for ref, group in episode_facts.items()},
        plans=plans,
        incidents={ref: IncidentView(ref=ref, facts=tuple(group)) for ref, group in incident_facts.items()},
        assessments=tuple(f for f in ordered if f.event_type == "cse.risk_assessed" and f.cse_level is not None),
        flags={name: tuple(group) for name, group in flags.items()},
    )
