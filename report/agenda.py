"""The CMOG agenda (EVENTS.md, v1.1): which children the meeting discusses, in which order. Pure: rows in,
ranking out, no I/O and no clock, so the store (`sgi agenda`) and a replayed log (`sgi agenda --replay`)
rank with the very same code, and a ranking can be back-tested.

- A child's priority is the sum of the weights (rules config, `agenda.weights`) of the distinct rules among
  its open unreviewed alerts: each rule counts once per child, however many instances it has. An alert is
  reviewed once a cmog.reviewed names it (by the as-of moment); it keeps its status.
- The agenda is every child with a priority above 0, highest first; ties go to the child whose most recent
  scoring alert is the most recent, then to the smaller key (so the order is total). The meeting takes the
  top N (`agenda.top`); the rest is a count.
- On the list: listed, and no step_down/close decision since (keep changes nothing; nor does listing again).
- Actions are keyed by action_ref: the latest cmog.action.set gives the child, owner and due time; the first
  done or cancelled update ends it. Overdue: open and due_at before the as-of moment (at due_at: not yet).

report/measures.py `agenda` is the same ranking in SQL (the Grafana board); a test holds them equal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.derived import Alert, Fact
from streams.core.clock import iso

ACTION_ENDS = frozenset({"done", "cancelled"})
OFF_LIST_DECISIONS = frozenset({"step_down", "close"})
CMOG_PREFIX = "cmog."
JSON_FIELDS = ("rank", "child_key", "priority", "rules", "on_list", "open_actions", "overdue_actions", "last_review")


@dataclass(frozen=True)
class AlertRow:
    """A child alert as the agenda reads it (from the alerts table, or the core's Alert)."""

    alert_id: str
    rule: str
    child_key: str  # the alert's subject: the canonical child key
    status: str
    opened_at: datetime
    resolved_at: datetime | None = None
    reviewed_at: datetime | None = None

    def open_at(self, as_of: datetime) -> bool:
        return (self.status != "withdrawn" and self.opened_at <= as_of
                and (self.resolved_at is None or self.resolved_at > as_of))

    def reviewed_by(self, as_of: datetime) -> bool:
        return self.reviewed_at is not None and self.reviewed_at <= as_of


@dataclass(frozen=True)
class CmogRecord:
    """One cmog.* event, under its child's canonical key."""

    event_id: str
    event_type: str
    occurred_at: datetime
    child_key: str
    decision: str | None = None
    alert_ids: tuple[str, ...] = ()
    action_ref: str | None = None
    owner_agency: str | None = None
    due_at: datetime | None = None
    action_kind: str | None = None
    action_status: str | None = None


@dataclass(frozen=True)
class Action:
    action_ref: str
    child_key: str
    owner_agency: str
    due_at: datetime
    action_kind: str | None
    ended_at: datetime | None
    end_status: str | None

    def overdue_at(self, as_of: datetime) -> bool:
        return self.ended_at is None and self.due_at < as_of


@dataclass(frozen=True)
class AgendaEntry:
    rank: int
    child_key: str
    priority: int
    rules: tuple[str, ...]
    on_list: bool
    open_actions: int
    overdue_actions: int
    last_review: datetime | None
    last_decision: str | None
    latest_alert_at: datetime

    def as_json(self) -> dict[str, Any]:
        """Exactly JSON_FIELDS; times ISO 8601 in UTC, as `sgi replay` writes them (both modes print alike)."""
        return {
            "rank": self.rank,
            "child_key": self.child_key,
            "priority": self.priority,
            "rules": list(self.rules),
            "on_list": self.on_list,
            "open_actions": self.open_actions,
            "overdue_actions": self.overdue_actions,
            "last_review": iso(self.last_review) if self.last_review is not None else None,
        }


@dataclass(frozen=True)
class Agenda:
    as_of: datetime
    entries: tuple[AgendaEntry, ...]  # the top N
    rest: int  # children with a priority above 0 beyond the top N


@dataclass(frozen=True)
class AgencyAccount:
    """Actions on one owning agency: set, done by their due time, done after it, overdue now."""

    owner_agency: str
    actions_set: int
    done_in_time: int
    done_late: int
    overdue_now: int


# --- from the core's records -------------------------------------------------------------------------


def record_of(fact: Fact, canonical: str) -> CmogRecord:
    """A cmog.* Fact as a CmogRecord under `canonical`, its child's canonical key."""
    return CmogRecord(
        event_id=fact.event_id,
        event_type=fact.event_type,
        occurred_at=fact.occurred_at,
        child_key=canonical,
        decision=_value(fact.decision),
        alert_ids=tuple(fact.alert_ids),
        action_ref=fact.action_ref,
        owner_agency=_value(fact.owner_agency),
        due_at=fact.due_at,
        action_kind=_value(fact.action_kind),
        action_status=_value(fact.action_status),
    )


def _value(item: Any) -> Any:
    return getattr(item, "value", item)


def reviews(records: Iterable[CmogRecord], as_of: datetime) -> dict[str, datetime]:
    """alert_id -> reviewed_at: the earliest cmog.reviewed by `as_of` naming it."""
    reviewed: dict[str, datetime] = {}
    for record in records:
        if record.event_type == "cmog.reviewed" and record.occurred_at <= as_of:
            for alert_id in record.alert_ids:
                if alert_id not in reviewed or record.occurred_at < reviewed[alert_id]:
                    reviewed[alert_id] = record.occurred_at
    return reviewed


def alert_rows(alerts: Iterable[Alert], reviewed: Mapping[str, datetime]) -> list[AlertRow]:
    """The core's child alerts as AlertRows; reviewed_at the earlier of the alert's own stamp and `reviewed`."""
    rows = []
    for alert in alerts:
        if alert.subject_kind != "child":
            continue
        stamps = [moment for moment in (alert.reviewed_at, reviewed.get(alert.alert_id)) if moment is not None]
        rows.append(AlertRow(alert.alert_id, alert.rule, alert.subject, alert.status, alert.opened_at,
                             alert.resolved_at, min(stamps) if stamps else None))
    return rows


# --- the ranking ---------------------------------------------------------------------------------------


def actions(records: Iterable[CmogRecord], as_of: datetime) -> list[Action]:
    """One Action per action_ref set by `as_of`."""
    by_ref: dict[str, list[CmogRecord]] = defaultdict(list)
    for record in records:
        if record.action_ref is not None and record.occurred_at <= as_of:
            by_ref[record.action_ref].append(record)
    found = []
    for ref, items in sorted(by_ref.items()):
        sets = [item for item in items if item.event_type == "cmog.action.set" and item.due_at is not None]
        if not sets:
            continue
        latest = max(sets, key=lambda item: (item.occurred_at, item.event_id))
        ends = [item for item in items
                if item.event_type == "cmog.action.updated" and item.action_status in ACTION_ENDS]
        end = min(ends, key=lambda item: (item.occurred_at, item.event_id)) if ends else None
        assert latest.due_at is not None
        found.append(Action(ref, latest.child_key, latest.owner_agency or "", latest.due_at, latest.action_kind,
                            end.occurred_at if end else None, end.action_status if end else None))
    return found


def rank(
    alerts: Iterable[AlertRow],
    records: Iterable[CmogRecord],
    weights: Mapping[str, int],
    as_of: datetime,
    top: int,
) -> Agenda:
    """The agenda as of `as_of`: the `top` children by priority, and how many more have a priority above 0."""
    records = [record for record in records if record.occurred_at <= as_of]
    rules_by_child: dict[str, set[str]] = defaultdict(set)
    latest_by_child: dict[str, datetime] = {}
    for alert in alerts:
        if not alert.open_at(as_of) or alert.reviewed_by(as_of) or weights.get(alert.rule, 0) <= 0:
            continue
        rules_by_child[alert.child_key].add(alert.rule)
        latest = latest_by_child.get(alert.child_key)
        latest_by_child[alert.child_key] = alert.opened_at if latest is None else max(latest, alert.opened_at)

    scored = [(sum(weights[rule] for rule in rules), child) for child, rules in rules_by_child.items()]
    # Highest priority, then the most recent scoring alert, then the key: a total order.
    scored.sort(key=lambda item: (-item[0], -latest_by_child[item[1]].timestamp(), item[1]))

    by_child: dict[str, list[CmogRecord]] = defaultdict(list)
    for record in records:
        by_child[record.child_key].append(record)
    open_by_child: dict[str, int] = defaultdict(int)
    overdue_by_child: dict[str, int] = defaultdict(int)
    for action in actions(records, as_of):
        if action.ended_at is None:
            open_by_child[action.child_key] += 1
            if action.overdue_at(as_of):
                overdue_by_child[action.child_key] += 1

    entries = []
    for position, (priority, child) in enumerate(scored[:top], start=1):
        mine = by_child.get(child, [])
        listed = [r.occurred_at for r in mine if r.event_type == "cmog.listed"]
        off = [r.occurred_at for r in mine if r.event_type == "cmog.reviewed" and r.decision in OFF_LIST_DECISIONS]
        reviewed = [r for r in mine if r.event_type == "cmog.reviewed"]
        last = max(reviewed, key=lambda r: (r.occurred_at, r.event_id)) if reviewed else None
        entries.append(AgendaEntry(
            rank=position,
            child_key=child,
            priority=priority,
            rules=tuple(sorted(rules_by_child[child])),
            on_list=bool(listed) and (not off or max(listed) > max(off)),
            open_actions=open_by_child[child],
            overdue_actions=overdue_by_child[child],
            last_review=last.occurred_at if last else None,
            last_decision=last.decision if last else None,
            latest_alert_at=latest_by_child[child],
        ))
    return Agenda(as_of, tuple(entries), max(0, len(scored) - top))


def accountability(records: Iterable[CmogRecord], as_of: datetime) -> list[AgencyAccount]:
    """Actions by owning agency, most overdue first (report/measures.py `accountability` in SQL)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for action in actions(records, as_of):
        row = counts[action.owner_agency]
        row[0] += 1
        if action.end_status == "done" and action.ended_at is not None:
            row[1 if action.ended_at <= action.due_at else 2] += 1
        if action.overdue_at(as_of):
            row[3] += 1
    accounts = [AgencyAccount(agency, *values) for agency, values in counts.items()]
    return sorted(accounts, key=lambda account: (-account.overdue_now, account.owner_agency))
