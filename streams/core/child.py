"""One child's state and its step function. Pure: `step_child(state, msg, now, config)`.

The state stores the child's facts (deduplicated by event_id) and what it has emitted; every
episode, plan, incident, CSE history, flag and alert is re-derived by folding the facts in
(occurred_at, event_id) order (streams.core.view), so any arrival order gives the same result.

    step_child(state | None, ToChild | Absorb | Retire | Tick, now, config)
        -> (state | None, [Alert | Episode | ChildSnapshot | PlaceLink | PlaceRetract | Absorb | ToChild])

Routing the outputs: Alert/Episode/ChildSnapshot are records for their topics; PlaceLink goes to
`place_key`, PlaceRetract to each of its `place_keys`; Absorb to `into_key`; ToChild to `child_key`
(a retired child forwards what still reaches it to the child it was merged into).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, PrivateAttr

from models.derived import Alert, ChildSnapshot, Episode, Fact, Place, PlaceLink
from models.events import CseLevel
from streams.core.clock import TICK, age_at, age_band, as_utc, encompass_deadline, next_birthday
from streams.core.config import SNAPSHOT_WINDOW, RulesConfig
from streams.core.messages import Message, PlaceRetract, Retire, Tick, ToChild
from streams.core.places import PlaceKind, place_keys, primary_place_key
from streams.core.rules import Memo, child_rules, is_final, reconcile
from streams.core.view import FLAGS, ChildView, EpisodeView, add_fact, derive, fact_order

DAYS_30 = timedelta(days=30)
DAYS_90 = timedelta(days=90)


class ChildState(BaseModel):
    """What one canonical child key holds. JSON round-trips (`to_json`/`from_json`) for the tables.

    `facts` are within the horizon (RulesConfig.child_horizon: the longest window, 365 days by
    default, plus 7 days lateness) plus what a live alert or an open episode/plan still needs;
    each step first forgets the rest (`_prune`). `alerts` are the emitted alerts not yet final;
    `episodes`, `links`, `snapshot` the last versions emitted, kept to emit only changes.
    `merged_keys`: every other identifier key this child is known by. A retired state
    (`retired_into` set) keeps no facts and forwards what still reaches it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    facts: dict[str, Fact] = {}
    alerts: dict[str, Alert] = {}
    episodes: dict[str, Episode] = {}
    links: dict[str, PlaceLink] = {}  # "<event_id>|<place_key>" -> the link as last emitted
    snapshot: ChildSnapshot | None = None
    merged_keys: list[str] = []
    retired_into: str | None = None
    clock: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    # The view of exactly `facts` (the dict it was derived from, and the view), kept between steps in
    # memory only: a new fact folds into it (view.add_fact) instead of re-deriving the whole history.
    _view: tuple[dict[str, Fact], ChildView] | None = PrivateAttr(default=None)
    # The rules' results per group with the objects they were computed from (rules.Memo): shared by
    # the states a step derives from this one, never serialised.
    _memo: Memo = PrivateAttr(default_factory=dict)
    # The view the last evaluation ran on: its episode records and links are reused for what did
    # not change (identity of the view's parts, see view.add_fact).
    _evaluated: ChildView | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        """Equal fields (the cached view is not part of the state)."""
        if not isinstance(other, ChildState):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # dict fields: never hashable

    def to_json(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes | str) -> ChildState:
        return cls.model_validate_json(raw)


class Absorb(Message):
    """Merge `state` (a retired child's) into the child `into_key`."""

    kind: Literal["absorb"] = "absorb"
    into_key: str
    state: ChildState


ChildMessage = ToChild | Retire | Absorb | Tick
ChildOutput = Alert | Episode | ChildSnapshot | PlaceLink | PlaceRetract | Absorb | ToChild


def step_child(
    state: ChildState | None, msg: ChildMessage, now: datetime, config: RulesConfig
) -> tuple[ChildState | None, list[ChildOutput]]:
    """Fold one message into a child's state and re-evaluate. Only changes are emitted.

    - ToChild: add the fact (a duplicated event_id changes nothing) and re-evaluate.
    - Absorb: union the other child's facts (and its, already withdrawn, alerts) and re-evaluate.
    - Retire: this key was merged into another: withdraw its alerts, retract its place links,
      emit a retired snapshot, and send its facts on as Absorb(into_key, state).
    - Tick: the clock moved; re-evaluate deadlines and windows.
    """
    if state is not None and state.retired_into is not None:
        return state, _forward(state.retired_into, msg)
    if isinstance(msg, ToChild):
        if state is None:
            state = ChildState(key=msg.child_key)
        if msg.fact.event_id in state.facts:
            return state, _last_emitted(state)
        state = _prune(state, now, config)
        before = view_of(state)
        facts = {**state.facts, msg.fact.event_id: msg.fact}
        state = state.model_copy(update={"facts": facts})
        state._view = (facts, add_fact(before, msg.fact))
        return _evaluate(state, now, config, added=msg.fact)
    elif isinstance(msg, Absorb):
        base = _prune(state if state is not None else ChildState(key=msg.into_key), now, config)
        absorbed = _prune(msg.state, now, config)
        merged = set(base.merged_keys) | {absorbed.key} | set(absorbed.merged_keys)
        state = base.model_copy(
            update={
                "facts": {**absorbed.facts, **base.facts},
                "alerts": {**absorbed.alerts, **base.alerts},
                "merged_keys": sorted(merged - {base.key}),
            }
        )
    elif isinstance(msg, Retire):
        if state is None:
            return ChildState(key=msg.old_key, retired_into=msg.into_key, clock=now), []
        return _retire(state, msg.into_key, now, config)
    elif state is None:
        return None, []
    else:
        state = _prune(state, now, config)
    return _evaluate(state, now, config)


def view_of(state: ChildState) -> ChildView:
    """The state's view: the cached one when it was derived from these very facts, else a full fold."""
    cached = state._view
    if cached is not None and cached[0] is state.facts:
        return cached[1]
    view = derive(state.key, state.facts.values())
    state._view = (state.facts, view)
    return view


def _last_emitted(state: ChildState) -> list[ChildOutput]:
    """A duplicate changes nothing, but it may be a redelivery after a crash that kept the state and
    lost what the step sent: send the last versions again (downstream keeps the latest by id)."""
    snapshot: list[ChildOutput] = [state.snapshot] if state.snapshot is not None else []
    return [*state.alerts.values(), *state.episodes.values(), *snapshot, *state.links.values()]


def _forward(into_key: str, msg: ChildMessage) -> list[ChildOutput]:
    """A retired key passes on what still reaches it (messages sent before the merge was known)."""
    if isinstance(msg, ToChild):
        return [ToChild(child_key=into_key, fact=msg.fact)]
    if isinstance(msg, Absorb):
        return [Absorb(into_key=into_key, state=msg.state)]
    return []


def _retire(
    state: ChildState, into_key: str, now: datetime, config: RulesConfig
) -> tuple[ChildState, list[ChildOutput]]:
    """Withdraw the live alerts (the survivor raises them again under its key; final ones stay as
    history under this key), retract the place links, and pass the facts on."""
    state = _prune(state, now, config)
    changed_at = as_utc(now)
    outputs: list[ChildOutput] = []
    alerts: dict[str, Alert] = {}
    for identifier, alert in state.alerts.items():
        if alert.status != "withdrawn":
            alert = alert.model_copy(update={"status": "withdrawn", "changed_at": changed_at})
            outputs.append(alert)
        alerts[identifier] = alert
    # Every place any kept fact links to, not only the links last emitted: a place may still count
    # a link this child stopped re-emitting because it aged past the place window.
    linked = {link.place_key for link in state.links.values()}
    for fact in state.facts.values():
        linked.update(key for _, place in _place_roles(fact) for key, _ in place_keys(place))
    place_keys_linked = sorted(linked)
    if place_keys_linked:
        outputs.append(PlaceRetract(child_key=state.key, place_keys=place_keys_linked))
    retired_snapshot = None
    if state.snapshot is not None:
        retired_snapshot = state.snapshot.model_copy(
            update={"retired": True, "open_alerts": [], "changed_at": changed_at}
        )
        outputs.append(retired_snapshot)
    outputs.append(
        Absorb(
            into_key=into_key,
            state=ChildState(key=state.key, facts=state.facts, alerts=alerts, merged_keys=state.merged_keys),
        )
    )
    tombstone = ChildState(
        key=state.key, merged_keys=state.merged_keys, retired_into=into_key, snapshot=retired_snapshot, clock=now
    )
    return tombstone, outputs


def _evaluate(
    state: ChildState, now: datetime, config: RulesConfig, added: Fact | None = None
) -> tuple[ChildState, list[ChildOutput]]:
    """Re-evaluate the rules and emit what changed. `added`: the one fact this step added to a state
    evaluated before (what lets the links be updated for that fact alone)."""
    view = view_of(state)
    horizon = now - config.child_horizon
    # Every other key this child is known by: from its facts (order-independent), accumulated
    # (so a key survives its facts being pruned). An evaluated state already holds its facts' keys.
    named = set(added.child_keys) if added is not None else {k for f in state.facts.values() for k in f.child_keys}
    merged_keys = sorted((set(state.merged_keys) | named) - {state.key})
    if merged_keys != state.merged_keys:
        state = state.model_copy(update={"merged_keys": merged_keys})
    evaluation = child_rules(view, now, config, state._memo)
    alerts, alert_changes = reconcile("child", state.key, state.alerts, evaluation.wanted, now, horizon)
    episodes, episode_changes = _episodes(state, view, now, horizon)
    # Every retained fact's links are stored for the boards; the place stage itself drops links
    # older than its own horizon, so a backfill still fills the places table without raising alerts.
    links, link_changes = _links(state, view, now - config.child_horizon, added)
    snapshot = _snapshot(state, view, alerts, now, config)
    snapshot_changes = [] if _same(state.snapshot, snapshot) else [snapshot]
    new_state = state.model_copy(
        update={
            "alerts": alerts,
            "episodes": episodes,
            "links": links,
            "snapshot": snapshot if snapshot_changes else state.snapshot,
            "clock": now,
            "due_at": min(filter(None, (_due(view, now, config), evaluation.next_change)), default=None),
        }
    )
    new_state._evaluated = view
    outputs: list[ChildOutput] = [*alert_changes, *episode_changes, *link_changes, *snapshot_changes]
    return new_state, outputs


def _prune(state: ChildState, now: datetime, config: RulesConfig) -> ChildState:
    """Forget the facts nothing can need any more, and the final alerts.

    Judged on the state as it stood before this step's message (a new fact, an absorbed state):
    whether an old fact is forgotten then depends only on the clock, not on when steps happened
    to run, so arrival order and merges see the same facts.
    """
    if not state.facts and not state.alerts:
        return state
    horizon = now - config.child_horizon
    live = {identifier: alert for identifier, alert in state.alerts.items() if not is_final(alert, horizon)}
    if len(live) == len(state.alerts) and all(fact.occurred_at >= horizon for fact in state.facts.values()):
        return state  # nothing is old enough to forget (the usual case)
    keep = _needed(view_of(state), live, horizon)
    facts = {event_id: fact for event_id, fact in state.facts.items() if event_id in keep}
    if len(facts) == len(state.facts) and len(live) == len(state.alerts):
        return state
    pruned = state.model_copy(update={"facts": facts, "alerts": live})
    pruned._memo = {}  # results for forgotten groups would only take memory
    return pruned


def _same(before: BaseModel | None, after: BaseModel) -> bool:
    """Equal but for `changed_at` (so a record is emitted only when something in it changed)."""
    if before is None or type(before) is not type(after):
        return False
    return {**before.__dict__, "changed_at": None} == {**after.__dict__, "changed_at": None}


# --- derived records ----------------------------------------------------------------------------


def _episode_record(key: str, episode: EpisodeView, now: datetime) -> Episode:
    start, end = episode.start, episode.end
    risks = episode.risks
    interview: Literal["none", "offered", "completed", "declined"] = "none"
    interview_at: datetime | None = None
    done = episode.met
    offered = next((f for f in episode.interviews if f.event_type == "return_interview.offered"), None)
    if done is not None:
        interview = "completed" if done.event_type == "return_interview.completed" else "declined"
        interview_at = done.occurred_at
    elif offered is not None:
        interview, interview_at = "offered", offered.occurred_at
    return Episode(
        child_key=key,
        episode_ref=episode.ref,
        classification=start.classification if start is not None else None,
        setting=start.setting if start is not None else None,
        police_risk=risks[-1][1] if risks else None,
        started_at=as_utc(start.occurred_at) if start is not None else None,
        ended_at=as_utc(end.occurred_at) if end is not None else None,
        last_seen_place=primary_place_key(start.place) if start is not None else None,
        found_place=primary_place_key(end.place) if end is not None else None,
        interview=interview,
        interview_at=as_utc(interview_at) if interview_at is not None else None,
        data_quality=list(episode.data_quality),
        changed_at=as_utc(now),
    )


def _episodes(
    state: ChildState, view: ChildView, now: datetime, horizon: datetime
) -> tuple[dict[str, Episode], list[Episode]]:
    """Episode records that changed. An episode wholly before the horizon (and not open) is settled
    history: its last record stands, whatever of it is still in state."""
    episodes: dict[str, Episode] = {}
    changed: list[Episode] = []
    evaluated = state._evaluated.episodes if state._evaluated is not None else {}
    for ref, episode_view in view.episodes.items():
        still_open = episode_view.start is not None and episode_view.end is None
        if not still_open and episode_view.facts[-1].occurred_at < horizon:  # facts are in time order
            continue
        before = state.episodes.get(ref)
        if before is not None and evaluated.get(ref) is episode_view:
            episodes[ref] = before  # the same episode as last time: the same record
            continue
        record = _episode_record(state.key, episode_view, now)
        if _same(before, record) and before is not None:
            episodes[ref] = before
        else:
            episodes[ref] = record
            changed.append(record)
    return episodes, changed


LinkRole = Literal["last_seen", "found", "named"]


def _place_roles(fact: Fact) -> list[tuple[LinkRole, Place]]:
    if fact.event_type == "missing.started" and fact.place is not None:
        return [("last_seen", fact.place)]
    if fact.event_type == "missing.ended" and fact.place is not None:
        return [("found", fact.place)]
    if fact.event_type == "return_interview.completed":
        return [("named", place) for place in fact.named_places]
    return []


def _link(state: ChildState, fact: Fact, role: LinkRole, place: Place, place_key: str, kind: PlaceKind,
          level: CseLevel) -> PlaceLink:
    return PlaceLink(
        place_key=place_key,
        place_kind=kind,
        place=place,
        child_key=state.key,
        event_id=fact.event_id,
        role=role,
        occurred_at=as_utc(fact.occurred_at),
        child_cse_level=level,
    )


def _links(
    state: ChildState, view: ChildView, since: datetime, added: Fact | None
) -> tuple[dict[str, PlaceLink], list[PlaceLink]]:
    """Child -> place links, one per (event, place key), for events since `since`; a link is emitted
    again when the child's CSE level as of its event changes (a late assessment) or, after a merge,
    under the surviving key.

    When this step only added a fact that is not an assessment to a state evaluated before, every
    other link is what it was: only the new fact's links are built. Otherwise each link is checked
    against the last one emitted and built again only when its CSE level changed."""
    evaluated = state._evaluated
    if added is not None and evaluated is not None and evaluated.assessments is view.assessments:
        desired = {key: link for key, link in state.links.items() if link.occurred_at >= since}
        facts: tuple[Fact, ...] = (added,) if added.occurred_at >= since else ()
    else:
        desired = {}
        facts = view.facts[bisect_left(view.facts, since, key=lambda fact: fact.occurred_at):]
    changed: list[PlaceLink] = []
    for fact in facts:
        roles = _place_roles(fact)
        if not roles:
            continue
        level = view.cse_level_at(fact.occurred_at)
        for role, place in roles:
            for place_key, kind in place_keys(place):
                key = f"{fact.event_id}|{place_key}"
                if key in desired:
                    continue
                before = state.links.get(key)
                if before is not None and before.child_cse_level == level and before.child_key == state.key:
                    desired[key] = before
                    continue
                link = _link(state, fact, role, place, place_key, kind, level)
                desired[key] = link
                if before != link:
                    changed.append(link)
    return desired, changed


def _snapshot(
    state: ChildState, view: ChildView, alerts: dict[str, Alert], now: datetime, config: RulesConfig
) -> ChildSnapshot:
    plans = sorted(view.active_plans(now), key=lambda plan: plan.start.occurred_at if plan.start else now)
    category = plans[-1].category_at(now) if plans else None
    starts = [e.start.occurred_at for e in view.episodes.values() if e.start is not None]
    completed = [
        f.occurred_at
        for e in view.episodes.values()
        for f in e.interviews
        if f.event_type == "return_interview.completed" and f.occurred_at <= now
    ]
    assessment = view.cse_at(now)
    sex = view.flag_fact("sex", now)
    facts = view.facts
    seen_until = bisect_right(facts, now, key=lambda fact: fact.occurred_at)  # facts at or before now
    window_from = bisect_right(facts, now - SNAPSHOT_WINDOW, key=lambda fact: fact.occurred_at)
    last_seen = facts[seen_until - 1] if seen_until else None
    return ChildSnapshot(
        child_key=state.key,
        merged_keys=list(state.merged_keys),
        birth_month=view.birth_month,
        age_band=age_band(age_at(view.birth_month, now, config.zone)),
        sex=sex.sex if sex is not None else None,
        looked_after=bool(view.flag("looked_after", now)),
        learning_disability=bool(view.flag("learning_disability", now)),
        cse_level=assessment.cse_level if assessment is not None and assessment.cse_level else CseLevel.none,
        cp_plan_active=bool(plans),
        cp_category=category.cp_category if category is not None else None,
        missing_now=any(e.start is not None and e.open_at(now) for e in view.episodes.values()),
        episodes_30d=sum(1 for at in starts if now - DAYS_30 < at <= now),
        episodes_90d=sum(1 for at in starts if now - DAYS_90 < at <= now),
        last_interview_at=as_utc(max(completed)) if completed else None,
        da_incidents_12m=sum(1 for i in view.incidents.values() if now - SNAPSHOT_WINDOW < i.at <= now),
        agencies=sorted({f.agency.value for f in facts[window_from:seen_until]}),
        open_alerts=sorted(identifier for identifier, alert in alerts.items() if alert.status == "open"),
        last_event_at=as_utc(last_seen.occurred_at) if last_seen is not None else None,
        changed_at=as_utc(now),
    )


# --- memory bound -------------------------------------------------------------------------------


def _needed(view: ChildView, alerts: dict[str, Alert], horizon: datetime) -> set[str]:
    """Event ids to keep: everything since the horizon, every fact of an episode/plan/incident that
    is open or has a fact since the horizon, the evidence of every live alert, and the latest CSE
    assessment, completed interview and flag-carrying facts before the horizon (the baseline later
    facts compare with).

    Known limits, both at the horizon (a year and a week by default): an episode/plan/incident ref
    that gets a new fact more than the horizon after its previous one, and a merge of two records
    that each have more than a horizon of history, may see the oldest facts or not depending on the
    clock at the step (which varies with arrival order within the lateness bound)."""
    keep = {fact.event_id for fact in view.facts if fact.occurred_at >= horizon}
    keep.update(event_id for alert in alerts.values() for event_id in alert.evidence)
    groups = [
        (episode.facts, episode.start is not None and episode.end is None) for episode in view.episodes.values()
    ]
    groups += [(plan.facts, plan.start is not None and plan.end is None) for plan in view.plans.values()]
    groups += [(incident.facts, False) for incident in view.incidents.values()]
    for facts, still_open in groups:
        if still_open or any(fact.event_id in keep for fact in facts):
            keep.update(fact.event_id for fact in facts)
    baseline = [f for f in view.assessments if f.occurred_at < horizon][-1:]
    interviews = sorted(
        (f for e in view.episodes.values() for f in e.interviews if f.event_type == "return_interview.completed"),
        key=fact_order,
    )
    baseline += [f for f in interviews if f.occurred_at < horizon][-1:]
    for name in FLAGS:
        baseline += [f for f in view.flags.get(name, ()) if f.occurred_at < horizon][-1:]
    keep.update(fact.event_id for fact in baseline)
    return keep


def _due(view: ChildView, now: datetime, config: RulesConfig) -> datetime | None:
    """The next moment a deadline passes, a future-dated fact or notification comes due, or a
    snapshot count or age band changes. (Rolling-window edges come from the rules' Evaluation.)"""
    rules = config.rules
    candidates: list[datetime] = []
    # The first fact after now (a future-dated fact comes due) and the first to leave the snapshot's
    # 12-month window after now: the facts are in time order.
    facts = view.facts
    upcoming = bisect_right(facts, now, key=lambda fact: fact.occurred_at)
    leaving = bisect_right(facts, now - SNAPSHOT_WINDOW, key=lambda fact: fact.occurred_at)
    candidates += [facts[index].occurred_at for index in (upcoming,) if index < len(facts)]
    candidates += [facts[index].occurred_at + SNAPSHOT_WINDOW for index in (leaving,) if index < len(facts)]
    # A deadline is a due item only while it can raise something: not when the need was met (or the
    # episode ended) by then, so the clock never wakes a child for nothing.
    for episode in view.episodes.values():
        if episode.start is not None:
            at = episode.start.occurred_at
            candidates += [at + DAYS_30, at + DAYS_90]
            deadline = at + rules.long_missing.delay
            if config.enabled("long_missing") and (episode.end is None or episode.end.occurred_at > deadline):
                candidates.append(deadline + TICK)
        if episode.end is not None and config.enabled("rhi_overdue"):
            deadline = episode.end.occurred_at + rules.rhi_overdue.delay
            met = episode.met
            if met is None or met.occurred_at > deadline:
                candidates.append(deadline + TICK)
    encompass = rules.encompass_overdue
    for incident in view.incidents.values():
        candidates.append(incident.at + SNAPSHOT_WINDOW)
        notified = incident.notified
        age = age_at(view.birth_month, incident.at, config.zone)
        if (
            config.enabled("encompass_overdue")
            and incident.child_present
            and age is not None
            and encompass.school_age_min <= age <= encompass.school_age_max
        ):
            deadline = encompass_deadline(incident.at, config.zone, encompass.deadline_time, encompass.non_school_days)
            if notified is None or notified[0] > deadline:
                candidates.append(deadline + TICK)
        if notified is not None:
            candidates.append(notified[0])
    birthday = next_birthday(view.birth_month, now, config.zone)
    if birthday is not None:
        candidates.append(birthday)
    return min((moment for moment in candidates if moment > now), default=None)
