"""The 15 alert rules of EVENTS.md, each a pure function of (view, now, config) -> wanted alerts.

A rule says which alerts should exist given everything known at `now`; the child and place steps
diff that against what they emitted before (`reconcile`): new -> open, cleared -> resolved, no
longer wanted at all -> withdrawn. Because a rule only reads facts folded in event-time order,
the same facts in any arrival order give the same alerts.

Decisions where EVENTS.md is silent (each rule's docstring says more):
- "Passes the deadline" is strict: the alert exists once now > deadline. A need met exactly at
  the deadline (an interview at exactly 72 h) is met in time.
- Rolling windows are half-open, (t - window, t]: events exactly one window apart are not in one
  window. Each maximal stretch of time during which the rule's condition holds is one alert; its
  id is anchored at the moment it began, it resolves the moment the window drops below the
  threshold, and its evidence is every event counted at some moment of the stretch.
- An alert is only wanted once now >= its opened_at, and only resolved once now >= resolved_at.
- Alert ids are sha256("rule|subject|anchor") hex, 32 characters, where the anchor is the episode,
  plan or incident ref for rules about one of those, the triggering event's id for rules about one
  assessment or grading, and the UTC ISO time a window began for rolling-count rules.
- Alert times are UTC. Evidence lists event ids in event-time order, including the events that made
  the condition true (the plan start behind missing_while_vulnerable, the previous assessment behind
  cse_risk_raised) and the one that resolved it: what an alert needs is kept while it is live.
- An alert resolved (or withdrawn) before the horizon (now - longest window - lateness) is final:
  dropped from state and never changed again, even by a merge.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple, TypeVar

from models.derived import Alert, Fact, PlaceLink
from models.events import CMOG_EVENT_TYPES, CSE_RANK, CseLevel
from streams.core.clock import age_at, as_utc, encompass_deadline, iso
from streams.core.config import RulesConfig
from streams.core.view import ChildView, EpisodeView, IncidentView, PlanView, fact_order


@dataclass(frozen=True)
class Wanted:
    """An alert a rule wants to exist. `anchor` names its window (see the module docstring)."""

    rule: str
    anchor: str
    opened_at: datetime
    resolved_at: datetime | None
    evidence: tuple[str, ...]
    summary: str
    # Raised by the clock passing a deadline (not by an event): it may first be seen long after
    # opened_at, when the clock jumps (a replay with a quiet spell).
    by_clock: bool = False
    # Decided by one retained fact alone (an open plan's start), so a state pruned of older history
    # cannot invent it: raised however old, e.g. for plans already open when a feed is first loaded.
    standing: bool = False


@lru_cache(maxsize=1 << 16)  # the same alerts are looked up on every step of their subject
def alert_id(rule: str, subject: str, anchor: str) -> str:
    return hashlib.sha256(f"{rule}|{subject}|{anchor}".encode()).hexdigest()[:32]


def evidence(*facts: Fact | None) -> tuple[str, ...]:
    """Event ids of the facts, in event-time order, each once."""
    present = sorted((f for f in facts if f is not None), key=fact_order)
    return tuple(dict.fromkeys(f.event_id for f in present))


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86400:g} days"


@dataclass(frozen=True)
class Evaluation:
    """The alerts wanted as known at `now`, and the next moment that could change without news
    (a stretch's projected end, a future-dated open or resolve): when the state next needs a tick."""

    wanted: list[Wanted]
    next_change: datetime | None


def settle(raw: Iterable[Wanted], now: datetime) -> Evaluation:
    wanted: list[Wanted] = []
    later: list[datetime] = []
    for want in raw:
        later += [moment for moment in (want.opened_at, want.resolved_at) if moment is not None and moment > now]
        clipped = clip(want, now)
        if clipped is not None:
            wanted.append(clipped)
    return Evaluation(wanted=wanted, next_change=min(later, default=None))


def clip(wanted: Wanted, now: datetime) -> Wanted | None:
    """What is known at `now`: nothing opens before its time, nothing resolves before its time."""
    if wanted.opened_at > now:
        return None
    opened = as_utc(wanted.opened_at)
    resolved = as_utc(wanted.resolved_at) if wanted.resolved_at is not None and wanted.resolved_at <= now else None
    return replace(wanted, opened_at=opened, resolved_at=resolved)


def deadline_alert(
    rule: str,
    anchor: str,
    deadline: datetime,
    met: tuple[datetime, Fact] | None,
    now: datetime,
    causes: Sequence[Fact | None],
    summary: str,
) -> Wanted | None:
    """A need with a deadline. Not wanted until the clock has passed the deadline; not wanted at all
    if it was met by the deadline (in event time); resolved when it was met, late."""
    if now <= deadline:
        return None
    if met is not None and met[0] <= deadline:
        return None
    return Wanted(
        rule=rule,
        anchor=anchor,
        opened_at=deadline,
        resolved_at=met[0] if met is not None else None,
        evidence=evidence(*causes, met[1] if met is not None else None),
        summary=summary,
        by_clock=True,
    )


# --- rolling windows ----------------------------------------------------------------------------


class Item(NamedTuple):
    """One countable thing in a rolling window: `key` is what is counted distinctly. A tuple, in
    sweep order (at, event_id): places hold hundreds of links and are swept on every change."""

    at: datetime
    event_id: str
    key: str
    flagged: bool = False


@dataclass(frozen=True)
class Stretch:
    """A maximal stretch of time during which a window condition held."""

    start: datetime
    end: datetime | None  # None: still holding at `now`
    items: tuple[Item, ...]  # every item inside the window at some moment of the stretch

    @property
    def event_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item.event_id for item in self.items))


def rolling_stretches(
    items: Iterable[Item],
    window: timedelta,
    now: datetime,
    distinct: int,
    flagged: int = 0,
    since: datetime | None = None,
) -> list[Stretch]:
    """Sweep the moments a window's contents can change (an item enters at its time, leaves one
    window later) and return each stretch during which the window holds at least `distinct`
    distinct keys and at least `flagged` flagged items. Only items at or before `now` count.

    The window at moment s is (s - window, s]; an item entering and another leaving at the same
    moment are applied together, so a count that stays at the threshold does not blink. Counts are
    kept incrementally: O(n log n) for n items.

    With `since`, only the moments from `since` on are judged (the caller knows the condition did not
    hold just before `since`, or began exactly there, and passes every item after `since - window`).
    """
    ordered = sorted(i for i in items if i.at <= now)
    # Leaving moments after `now` are swept too: a stretch open at `now` gets the end it will have if
    # nothing new arrives (clip() hides it until then; the step schedules its next tick at it).
    moments = sorted({i.at for i in ordered} | {i.at + window for i in ordered})
    if since is not None:
        moments = sorted({moment for moment in moments if moment >= since} | {since})
    stretches: list[Stretch] = []
    keys: Counter[str] = Counter()
    flags = 0
    low = high = 0
    start: datetime | None = None
    start_low = last_high = 0
    for moment in moments:
        while high < len(ordered) and ordered[high].at <= moment:
            keys[ordered[high].key] += 1
            flags += ordered[high].flagged
            high += 1
        while low < high and ordered[low].at <= moment - window:
            keys[ordered[low].key] -= 1
            if not keys[ordered[low].key]:
                del keys[ordered[low].key]
            flags -= ordered[low].flagged
            low += 1
        if len(keys) >= distinct and flags >= flagged:
            if start is None:
                start, start_low = moment, low
            last_high = high
        elif start is not None:
            stretches.append(Stretch(start=start, end=moment, items=tuple(ordered[start_low:last_high])))
            start = None
    if start is not None:
        stretches.append(Stretch(start=start, end=None, items=tuple(ordered[start_low:last_high])))
    return stretches


def windowed(
    rule: str,
    items: list[Item],
    window: timedelta,
    now: datetime,
    distinct: int,
    config: RulesConfig,
    memo: Memo | None,
    flagged: int = 0,
) -> list[Stretch]:
    """rolling_stretches, swept again only from the first moment the items changed.

    Moments before the earliest item that was added or removed see the same window, so the stretches
    that ended before it stand; the sweep restarts at that item's time, or at the start of the stretch
    holding there. The result does not depend on `now` while no item lies after it (future-dated
    items: a full sweep, not memoised)."""
    ordered = tuple(sorted(items))
    if memo is None or (ordered and ordered[-1].at > now):
        return rolling_stretches(ordered, window, now, distinct, flagged)
    cached = memo.get((rule, ""))
    if cached is None or cached[0][0] is not config:
        stretches = rolling_stretches(ordered, window, now, distinct, flagged)
        memo[(rule, "")] = ((config, ordered), stretches)
        return stretches
    before: tuple[Item, ...] = cached[0][1]  # type: ignore[assignment]
    old: list[Stretch] = cached[1]
    if before == ordered:
        return old
    if len(ordered) == len(before) + 1 and ordered[:-1] == before:
        changed_at = ordered[-1].at  # the usual case: one item after all the others
    else:
        first = next(
            (index for index, (a, b) in enumerate(zip(before, ordered, strict=False)) if a != b),
            min(len(before), len(ordered)),
        )
        changed_at = min(group[first].at for group in (before, ordered) if first < len(group))
    affected = next((i for i, stretch in enumerate(old) if stretch.end is None or stretch.end >= changed_at), len(old))
    since = min(changed_at, old[affected].start) if affected < len(old) else changed_at
    tail = [item for item in ordered if item.at > since - window]
    stretches = [*old[:affected], *rolling_stretches(tail, window, now, distinct, flagged, since=since)]
    memo[(rule, "")] = ((config, ordered), stretches)
    return stretches


def _stretch_alerts(rule: str, stretches: list[Stretch], summary: str) -> list[Wanted]:
    return [
        Wanted(
            rule=rule,
            anchor=iso(stretch.start),
            opened_at=stretch.start,
            resolved_at=stretch.end,
            evidence=stretch.event_ids,
            summary=summary,
        )
        for stretch in stretches
    ]


# --- child rules --------------------------------------------------------------------------------
#
# A rule about one episode, plan or incident is a function of that group and of the few things it
# reads elsewhere in the view (`reads`, e.g. the plans active at an episode's start). The view shares
# every group a new fact did not touch, so a memo keyed by those very objects re-runs a rule only for
# what changed. Such a rule is computed as if the clock had passed every deadline (LATER); an alert
# raised by the clock is then kept only once `now` is past its deadline, as deadline_alert would.

LATER = datetime.max.replace(tzinfo=UTC)
# (rule, ref) -> (the objects the result was computed from, the result); compared by identity.
Memo = dict[tuple[str, str], tuple[tuple[object, ...], list[Any]]]
Group = TypeVar("Group", bound=EpisodeView | PlanView | IncidentView)


def _same_inputs(before: tuple[object, ...], now: tuple[object, ...]) -> bool:
    """Tuple equality checks identity first, element by element: the shared parts of a view compare in
    constant time; parts rebuilt with equal values are equal too (the rules are pure functions)."""
    return before == now


def _per_group(
    rule: str,
    groups: dict[str, Group],
    one: Callable[[Group, ChildView, RulesConfig], list[Wanted]],
    reads: Callable[[Group, ChildView], tuple[object, ...]],
    view: ChildView,
    now: datetime,
    config: RulesConfig,
    memo: Memo | None,
) -> list[Wanted]:
    wanted: list[Wanted] = []
    for ref, group in groups.items():
        if memo is None:
            found = one(group, view, config)
        else:
            inputs = (config, group, *reads(group, view))
            cached = memo.get((rule, ref))
            if cached is not None and _same_inputs(cached[0], inputs):
                found = cached[1]
            else:
                found = one(group, view, config)
                memo[(rule, ref)] = (inputs, found)
        wanted.extend(want for want in found if not (want.by_clock and want.opened_at >= now))
    return wanted


def _whole(
    rule: str,
    inputs: tuple[object, ...],
    compute: Callable[[ChildView, RulesConfig], list[Wanted]],
    view: ChildView,
    config: RulesConfig,
    memo: Memo | None,
) -> list[Wanted]:
    """A rule over a whole list (the assessments), memoised on the objects it reads. Neither depends
    on the clock: `settle` hides what opens or resolves after `now`."""
    if memo is None:
        return compute(view, config)
    cached = memo.get((rule, ""))
    if cached is not None and _same_inputs(cached[0], inputs):
        return cached[1]
    found = compute(view, config)
    memo[(rule, "")] = (inputs, found)
    return found


def _reads_nothing(group: object, view: ChildView) -> tuple[object, ...]:
    return ()


def _reads_as_of_start(episode: EpisodeView, view: ChildView) -> tuple[object, ...]:
    """The plans (all of them: the dict is shared until a plan fact arrives, cheaper to compare than
    the plans active at the start), and the looked-after flag and CSE assessment as of the start."""
    if episode.start is None:
        return ()
    at = episode.start.occurred_at
    return (view.plans, view.flag_fact("looked_after", at), view.cse_at(at))


def _reads_birth_month(incident: IncidentView, view: ChildView) -> tuple[object, ...]:
    return (view.birth_month,)


def _reads_plans_at_incident(incident: IncidentView, view: ChildView) -> tuple[object, ...]:
    return (view.plans,)


def rhi_overdue(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """An ended episode with no return interview completed or declined within 72 h of the return.

    An interview follows its episode by episode_ref, whatever the arrival order; a completed or
    declined interview both meet the need (an offer does not). An episode that ended without a
    recorded start still needs its interview (the child came back), and is flagged on the Episode.
    """
    return _per_group("rhi_overdue", view.episodes, _rhi_overdue_one, _reads_nothing, view, now, config, memo)


def _rhi_overdue_one(episode: EpisodeView, view: ChildView, config: RulesConfig) -> list[Wanted]:
    delay = config.rules.rhi_overdue.delay
    wanted: list[Wanted] = []
    if episode.end is None:
        return wanted
    met = episode.met
    alert = deadline_alert(
        "rhi_overdue",
        episode.ref,
        episode.end.occurred_at + delay,
        (met.occurred_at, met) if met is not None else None,
        LATER,
        (episode.start, episode.end),
        f"No return home interview within {_hours(delay)} of the return (episode {episode.ref})",
    )
    if alert is not None:
        wanted.append(alert)
    return wanted


def long_missing(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """An episode still open 24 h after its start; resolves when it ends (late). Needs a start."""
    return _per_group("long_missing", view.episodes, _long_missing_one, _reads_nothing, view, now, config, memo)


def _long_missing_one(episode: EpisodeView, view: ChildView, config: RulesConfig) -> list[Wanted]:
    delay = config.rules.long_missing.delay
    wanted: list[Wanted] = []
    if episode.start is None:
        return wanted
    end = episode.end
    alert = deadline_alert(
        "long_missing",
        episode.ref,
        episode.start.occurred_at + delay,
        (end.occurred_at, end) if end is not None else None,
        LATER,
        (episode.start,),
        f"Missing for more than {_hours(delay)} (episode {episode.ref})",
    )
    if alert is not None:
        wanted.append(alert)
    return wanted


def missing_while_vulnerable(
    view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None
) -> list[Wanted]:
    """A missing.started while, as of its time, the child is on an active CP plan, looked after (the
    latest looked_after reported at or before the start), or at CSE risk in the configured levels
    (the latest assessment at or before the start). Resolves when the episode ends. The facts that
    made the child vulnerable are evidence too, so pruning never loses them while the alert lives."""
    return _per_group(
        "missing_while_vulnerable",
        view.episodes,
        _missing_while_vulnerable_one,
        _reads_as_of_start,
        view,
        now,
        config,
        memo,
    )


def _missing_while_vulnerable_one(episode: EpisodeView, view: ChildView, config: RulesConfig) -> list[Wanted]:
    rule = config.rules.missing_while_vulnerable
    wanted: list[Wanted] = []
    start = episode.start
    if start is None:
        return wanted
    at = start.occurred_at
    reasons: list[str] = []
    support: list[Fact | None] = [start]
    plans = view.active_plans(at)
    if plans:
        reasons.append("on a child protection plan")
        support.extend(plan.start for plan in plans)
    looked_after = view.flag_fact("looked_after", at)
    if looked_after is not None and looked_after.looked_after:
        reasons.append("looked after")
        support.append(looked_after)
    assessment = view.cse_at(at)
    if assessment is not None and assessment.cse_level in rule.cse_levels:
        reasons.append(f"at CSE risk {assessment.cse_level}")
        support.append(assessment)
    if not reasons:
        return wanted
    end = episode.end
    wanted.append(
        Wanted(
            rule="missing_while_vulnerable",
            anchor=episode.ref,
            opened_at=at,
            resolved_at=max(end.occurred_at, at) if end is not None else None,
            evidence=evidence(*support, end),
            summary=f"Went missing while {', '.join(reasons)} (episode {episode.ref})",
        )
    )
    return wanted


def police_high_risk(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """Each stretch of an open episode during which the police grade is high is one alert (anchored
    at the grading event): it resolves at a re-grade below high or at the episode's end. Grades
    after the end are ignored; a grade before the start counts from the start. An episode with
    grades but no start is taken as open from its first grade."""
    return _per_group("police_high_risk", view.episodes, _police_high_risk_one, _reads_nothing, view, now, config, memo)


def _police_high_risk_one(episode: EpisodeView, view: ChildView, config: RulesConfig) -> list[Wanted]:
    risks = config.rules.police_high_risk.risks
    wanted: list[Wanted] = []
    begin = episode.opened_at
    if begin is None:
        return wanted
    end = episode.end
    stretches: list[tuple[datetime, Fact, datetime | None, Fact | None]] = []
    high: tuple[datetime, Fact] | None = None
    for at, risk, fact in episode.risks:
        if end is not None and at >= end.occurred_at:
            break
        at = max(at, begin)
        if risk in risks and high is None:
            high = (at, fact)
        elif risk not in risks and high is not None:
            stretches.append((high[0], high[1], at, fact))
            high = None
    if high is not None:
        stretches.append((high[0], high[1], max(end.occurred_at, high[0]) if end else None, end))
    for opened, cause, resolved, resolver in stretches:
        wanted.append(
            Wanted(
                rule="police_high_risk",
                anchor=f"{episode.ref}|{cause.event_id}",
                opened_at=opened,
                resolved_at=resolved,
                evidence=evidence(episode.start, cause, resolver if resolved is not None else None),
                summary=f"Police graded the missing episode high risk (episode {episode.ref})",
            )
        )
    return wanted


def cse_risk_raised(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """An assessment at a configured level (medium/high) above the previous assessment (never
    assessed = none). Each rise is its own alert (medium -> high raises again); all open rises
    resolve at the first later assessment below the lowest configured level. The previous
    assessment is evidence, so the comparison survives pruning."""
    return _whole("cse_risk_raised", (config, view.assessments), _cse_risk_raised_all, view, config, memo)


def _cse_risk_raised_all(view: ChildView, config: RulesConfig) -> list[Wanted]:
    levels = config.rules.cse_risk_raised.levels
    floor = min(CSE_RANK[level] for level in levels) if levels else 99
    wanted: list[Wanted] = []
    open_rises: list[tuple[Fact, Fact | None]] = []
    previous: Fact | None = None
    for assessment in view.assessments:
        level = assessment.cse_level or CseLevel.none
        if CSE_RANK[level] < floor:
            for rise, before in open_rises:
                wanted.append(_rise(rise, before, assessment))
            open_rises = []
        before_level = previous.cse_level if previous is not None and previous.cse_level else CseLevel.none
        if level in levels and CSE_RANK[level] > CSE_RANK[before_level]:
            open_rises.append((assessment, previous))
        previous = assessment
    wanted.extend(_rise(rise, before, None) for rise, before in open_rises)
    return wanted


def _rise(rise: Fact, before: Fact | None, resolver: Fact | None) -> Wanted:
    before_level = before.cse_level if before is not None and before.cse_level else CseLevel.none
    return Wanted(
        rule="cse_risk_raised",
        anchor=rise.event_id,
        opened_at=rise.occurred_at,
        resolved_at=resolver.occurred_at if resolver is not None else None,
        evidence=evidence(before, rise, resolver),
        summary=f"CSE risk raised from {before_level} to {rise.cse_level}",
    )


def cse_low_under13(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """A CSE assessment of low for a child under 13 at the assessment (age from birth_month, see
    clock.age_at) or with a learning disability (latest reported at or before it). A run of such low
    assessments is one alert, anchored at the first; it resolves at the next assessment that is not
    low. With no birth month only the learning-disability arm can fire."""
    inputs = (config, view.assessments, view.birth_month, view.flags.get("learning_disability", ()))
    return _whole("cse_low_under13", inputs, _cse_low_under13_all, view, config, memo)


def _cse_low_under13_all(view: ChildView, config: RulesConfig) -> list[Wanted]:
    rule = config.rules.cse_low_under13
    wanted: list[Wanted] = []
    run: list[Fact] = []
    for assessment in view.assessments:
        if assessment.cse_level == CseLevel.low:
            age = age_at(view.birth_month, assessment.occurred_at, config.zone)
            young = age is not None and age < rule.under_age
            disability = view.flag_fact("learning_disability", assessment.occurred_at)
            disabled = rule.learning_disability and disability is not None and bool(disability.learning_disability)
            if young or disabled:
                run.append(assessment)
                if disabled and disability is not None:
                    run.append(disability)
        elif run:
            wanted.append(_low_run(run, assessment, rule.under_age))
            run = []
    if run:
        wanted.append(_low_run(run, None, rule.under_age))
    return wanted


def _low_run(run: list[Fact], resolver: Fact | None, under_age: int) -> Wanted:
    first = next(f for f in run if f.event_type == "cse.risk_assessed")
    return Wanted(
        rule="cse_low_under13",
        anchor=first.event_id,
        opened_at=first.occurred_at,
        resolved_at=resolver.occurred_at if resolver is not None else None,
        evidence=evidence(*run, resolver),
        summary=f"CSE risk assessed low for a child under {under_age} or with a learning disability",
    )


def da_high_risk_no_marac(
    view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None
) -> list[Wanted]:
    """A DA incident reported with dash_score >= threshold or a configured dash_risk (on any report
    of the incident_ref; the first such report opens it) and not referred to MARAC by then. Resolves
    at the first report of the same incident_ref with marac_referred true; a referral at or before
    the high-risk report means it never fires."""
    return _per_group(
        "da_high_risk_no_marac", view.incidents, _da_high_risk_no_marac_one, _reads_nothing, view, now, config, memo,
    )


def _da_high_risk_no_marac_one(incident: IncidentView, view: ChildView, config: RulesConfig) -> list[Wanted]:
    rule = config.rules.da_high_risk_no_marac
    wanted: list[Wanted] = []
    high = next(
        (
            f
            for f in incident.facts
            if (f.dash_score is not None and f.dash_score >= rule.dash_score_threshold)
            or (f.dash_risk is not None and f.dash_risk in rule.dash_risks)
        ),
        None,
    )
    if high is None:
        return wanted
    referred = next((f for f in incident.facts if f.marac_referred), None)
    if referred is not None and referred.occurred_at <= high.occurred_at:
        return wanted
    wanted.append(
        Wanted(
            rule="da_high_risk_no_marac",
            anchor=incident.ref,
            opened_at=high.occurred_at,
            resolved_at=referred.occurred_at if referred is not None else None,
            evidence=evidence(incident.first, high, referred),
            summary=f"High-risk DA incident not referred to MARAC (incident {incident.ref})",
        )
    )
    return wanted


def encompass_overdue(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """A DA incident with the child present (any report says so) and of school age (4..17 at the
    incident, from birth_month; unknown age does not fire) and no encompass_notified_at at or before
    09:00 local on the next weekday after the incident (clock.encompass_deadline, skipping the
    configured non-school days). The earliest encompass_notified_at on any report of the incident_ref
    is when the need was met: in time -> never fires; late -> resolved at that time."""
    return _per_group(
        "encompass_overdue", view.incidents, _encompass_overdue_one, _reads_birth_month, view, now, config, memo,
    )


def _encompass_overdue_one(incident: IncidentView, view: ChildView, config: RulesConfig) -> list[Wanted]:
    rule = config.rules.encompass_overdue
    wanted: list[Wanted] = []
    if not incident.child_present:
        return wanted
    age = age_at(view.birth_month, incident.at, config.zone)
    if age is None or not rule.school_age_min <= age <= rule.school_age_max:
        return wanted
    deadline = encompass_deadline(incident.at, config.zone, rule.deadline_time, rule.non_school_days)
    alert = deadline_alert(
        "encompass_overdue",
        incident.ref,
        deadline,
        incident.notified,
        LATER,
        (incident.first,),
        f"School not notified through Operation Encompass by {rule.deadline_time:%H:%M} on the next "
        f"school day (incident {incident.ref})",
    )
    if alert is not None:
        wanted.append(alert)
    return wanted


def cp_repeat_plan(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """A cp_plan.started with previous_plans >= 1; resolves when that plan (plan_ref) ends."""
    return _per_group("cp_repeat_plan", view.plans, _cp_repeat_plan_one, _reads_nothing, view, now, config, memo)


def _cp_repeat_plan_one(plan: PlanView, view: ChildView, config: RulesConfig) -> list[Wanted]:
    minimum = config.rules.cp_repeat_plan.previous_plans_min
    wanted: list[Wanted] = []
    start = plan.start
    if start is None or start.previous_plans is None or start.previous_plans < minimum:
        return wanted
    end = plan.end
    wanted.append(
        Wanted(
            rule="cp_repeat_plan",
            anchor=plan.ref,
            opened_at=start.occurred_at,
            resolved_at=max(end.occurred_at, start.occurred_at) if end is not None else None,
            evidence=evidence(start, end),
            summary=f"Child protection plan started after {start.previous_plans} previous plan(s)",
            standing=end is None,
        )
    )
    return wanted


def da_on_cp_plan(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """A DA incident (its first report) while a CP plan is active; resolves when every plan active
    at the incident has ended."""
    return _per_group(
        "da_on_cp_plan", view.incidents, _da_on_cp_plan_one, _reads_plans_at_incident, view, now, config, memo,
    )


def _da_on_cp_plan_one(incident: IncidentView, view: ChildView, config: RulesConfig) -> list[Wanted]:
    wanted: list[Wanted] = []
    plans = view.active_plans(incident.at)
    if not plans:
        return wanted
    ends = [plan.end for plan in plans]
    resolved = max(e.occurred_at for e in ends if e is not None) if all(e is not None for e in ends) else None
    wanted.append(
        Wanted(
            rule="da_on_cp_plan",
            anchor=incident.ref,
            opened_at=incident.at,
            resolved_at=resolved,
            evidence=evidence(incident.first, *(p.start for p in plans), *(ends if resolved else ())),
            summary=f"DA incident while on a child protection plan (incident {incident.ref})",
        )
    )
    return wanted


def repeat_missing(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """N missing episodes started in a rolling window. Counted by episode (the first
    missing.started of each episode_ref), so a duplicated start, which is flagged, does not count twice."""
    rule = config.rules.repeat_missing
    items = [
        Item(at=e.start.occurred_at, key=e.ref, event_id=e.start.event_id)
        for e in view.episodes.values()
        if e.start is not None
    ]
    stretches = windowed("repeat_missing", items, rule.window, now, rule.count, config, memo)
    summary = f"{rule.count} or more missing episodes within {_days(rule.window)}"
    return _stretch_alerts("repeat_missing", stretches, summary)


def da_escalation(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """N DA incidents (distinct incident_ref, at their first report) in a rolling window (365 days)."""
    rule = config.rules.da_escalation
    items = [Item(at=i.at, key=i.ref, event_id=i.first.event_id) for i in view.incidents.values()]
    stretches = windowed("da_escalation", items, rule.window, now, rule.count, config, memo)
    return _stretch_alerts("da_escalation", stretches, f"{rule.count} or more DA incidents within {_days(rule.window)}")


def multi_agency_concern(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> list[Wanted]:
    """N distinct source agencies among all the child's events (any type, identity.linked included)
    in a rolling window."""
    rule = config.rules.multi_agency_concern
    stretches = windowed("multi_agency_concern", _agency_items(view, memo), rule.window, now, rule.count, config, memo)
    summary = f"{rule.count} or more agencies reported concerns within {_days(rule.window)}"
    return _stretch_alerts("multi_agency_concern", stretches, summary)


def _agency_item(fact: Fact) -> list[Item]:
    # The CMOG's own records are not a new concern about the child (EVENTS.md v1.1): they never count.
    if fact.event_type in CMOG_EVENT_TYPES:
        return []
    return [Item(at=fact.occurred_at, key=fact.agency.value, event_id=fact.event_id)]


def _agency_items(view: ChildView, memo: Memo | None) -> list[Item]:
    """One item per fact but the CMOG's, in fact order; with a memo, a fact appended after the others
    adds at most one item."""
    facts = view.facts
    cached = memo.get(("agency-items", "")) if memo is not None else None
    if cached is not None and len(cached[0]) == len(facts) - 1 and cached[0] == facts[:-1]:
        items = [*cached[1], *_agency_item(facts[-1])]
    elif cached is not None and cached[0] == facts:
        items = cached[1]
    else:
        items = [item for fact in facts for item in _agency_item(fact)]
    if memo is not None:
        memo[("agency-items", "")] = (facts, items)
    return items


ChildRule = Callable[[ChildView, datetime, RulesConfig, Memo | None], list[Wanted]]

CHILD_RULES: dict[str, ChildRule] = {
    "rhi_overdue": rhi_overdue,
    "repeat_missing": repeat_missing,
    "long_missing": long_missing,
    "missing_while_vulnerable": missing_while_vulnerable,
    "police_high_risk": police_high_risk,
    "cse_risk_raised": cse_risk_raised,
    "cse_low_under13": cse_low_under13,
    "da_high_risk_no_marac": da_high_risk_no_marac,
    "da_escalation": da_escalation,
    "encompass_overdue": encompass_overdue,
    "cp_repeat_plan": cp_repeat_plan,
    "da_on_cp_plan": da_on_cp_plan,
    "multi_agency_concern": multi_agency_concern,
}


def child_rules(view: ChildView, now: datetime, config: RulesConfig, memo: Memo | None = None) -> Evaluation:
    """Every enabled child rule's wanted alerts, as known at `now`. With a `memo` (kept by the child
    between steps), a rule re-runs only for the groups whose inputs changed since it last ran."""
    raw: list[Wanted] = []
    for rule, evaluate in CHILD_RULES.items():
        if config.enabled(rule):
            raw.extend(evaluate(view, now, config, memo))
    return settle(raw, now)


# --- place rules --------------------------------------------------------------------------------


def hotspot_emerging(links: Sequence[PlaceLink], now: datetime, config: RulesConfig) -> list[Wanted]:
    """N distinct children linked to the place (last seen, found, or named) in a rolling window."""
    rule = config.rules.hotspot_emerging
    items = [Item(at=link.occurred_at, key=link.child_key, event_id=link.event_id) for link in links]
    stretches = rolling_stretches(items, rule.window, now, rule.count)
    return _stretch_alerts(
        "hotspot_emerging", stretches, f"{rule.count} or more children linked to this place within {_days(rule.window)}"
    )


def linked_children(links: Sequence[PlaceLink], now: datetime, config: RulesConfig) -> list[Wanted]:
    """Two or more distinct children linked to the place within a rolling window while at least one
    link in that window carries a CSE level in the configured levels (the child's level as of that
    link's event). Same stretch semantics as the counting rules."""
    rule = config.rules.linked_children
    if not any(link.child_cse_level in rule.cse_levels for link in links):
        return []  # the usual case, and the sweep is the cost of a busy place
    items = [
        Item(
            at=link.occurred_at,
            key=link.child_key,
            event_id=link.event_id,
            flagged=link.child_cse_level in rule.cse_levels,
        )
        for link in links
    ]
    stretches = rolling_stretches(items, rule.window, now, rule.count, flagged=1)
    return _stretch_alerts(
        "linked_children",
        stretches,
        f"{rule.count} or more children linked to this place within {_days(rule.window)}, one at CSE risk",
    )


PlaceRule = Callable[[Sequence[PlaceLink], datetime, RulesConfig], list[Wanted]]
PLACE_RULES: dict[str, PlaceRule] = {"hotspot_emerging": hotspot_emerging, "linked_children": linked_children}


def place_rules(links: Sequence[PlaceLink], now: datetime, config: RulesConfig) -> Evaluation:
    """Every enabled place rule's wanted alerts, as known at `now`."""
    raw: list[Wanted] = []
    for rule, evaluate in PLACE_RULES.items():
        if config.enabled(rule):
            raw.extend(evaluate(links, now, config))
    return settle(raw, now)


# --- wanted vs emitted --------------------------------------------------------------------------


def _same_alert(before: Alert, after: Alert) -> bool:
    return before.model_copy(update={"changed_at": after.changed_at}) == after


def is_final(alert: Alert, horizon: datetime) -> bool:
    """Nothing that can still arrive (within the lateness bound) can change it: it is dropped from state."""
    if alert.status == "resolved":
        return alert.resolved_at is not None and alert.resolved_at < horizon
    if alert.status == "withdrawn":
        return alert.opened_at < horizon
    return False


def reconcile(
    subject_kind: Literal["child", "place"],
    subject: str,
    emitted: dict[str, Alert],
    wanted: Iterable[Wanted],
    now: datetime,
    horizon: datetime,
) -> tuple[dict[str, Alert], list[Alert]]:
    """Diff what the rules want against what was emitted; return (alerts to keep, alerts changed).

    New -> open (or resolved, when it is already known to have cleared); changed window or evidence ->
    a new version; emitted but no longer wanted -> withdrawn. Alerts wholly before `horizon` (now -
    longest window - lateness) are final and dropped from state.

    A wanted alert never emitted before is not raised when it would be final at once (resolved
    before the horizon), nor when an event opened it before the horizon: within the lateness bound
    an event-opened alert is always seen while its event is inside the horizon, so such an alert
    can only come from a state partly pruned (e.g. the oldest CSE assessment kept with its
    predecessor gone). Deadline alerts are exempt from the second test: the clock may pass a
    deadline long before anything looks (a replay's clock jumps over quiet spells); so are standing
    alerts, decided by one retained fact (an open repeat plan loaded long after it started).
    """
    # Final alerts are settled history whether or not an earlier step got round to dropping them:
    # diffing only live ones keeps the result independent of when steps happened.
    live = {identifier: alert for identifier, alert in emitted.items() if not is_final(alert, horizon)}
    current = dict(live)
    changed: list[Alert] = []
    wanted_ids: set[str] = set()
    for want in wanted:
        identifier = alert_id(want.rule, subject, want.anchor)
        wanted_ids.add(identifier)
        before = current.get(identifier)
        status: Literal["open", "resolved"] = "resolved" if want.resolved_at is not None else "open"
        if (
            before is not None
            and before.status == status
            and before.opened_at == want.opened_at
            and before.resolved_at == want.resolved_at
            and before.summary == want.summary
            and tuple(before.evidence) == want.evidence
        ):
            continue  # unchanged: nothing to build or send
        if before is None and (
            (want.resolved_at is not None and want.resolved_at < horizon)
            or (not want.by_clock and not want.standing and want.opened_at < horizon)
        ):
            continue
        alert = Alert(
            alert_id=identifier,
            rule=want.rule,
            subject_kind=subject_kind,
            subject=subject,
            status=status,
            opened_at=want.opened_at,
            resolved_at=want.resolved_at,
            evidence=list(want.evidence),
            summary=want.summary,
            changed_at=as_utc(now),
        )
        if before is not None and _same_alert(before, alert):
            continue
        current[identifier] = alert
        changed.append(alert)
    for identifier, before in live.items():
        if identifier in wanted_ids or before.status == "withdrawn":
            continue
        withdrawn = before.model_copy(update={"status": "withdrawn", "changed_at": as_utc(now)})
        current[identifier] = withdrawn
        changed.append(withdrawn)
    kept = {identifier: alert for identifier, alert in current.items() if not is_final(alert, horizon)}
    return kept, changed
