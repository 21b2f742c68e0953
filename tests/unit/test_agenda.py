"""The CMOG agenda's ranking (report/agenda.py) at its boundaries, and `sgi agenda --replay` on a log whose
cmog.* events are built with contract_builders and go through ingest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from report.agenda import JSON_FIELDS, AlertRow, CmogRecord, accountability, actions, rank
from sgi.agenda import replay_agenda, table_text
from sgi.cli import main
from streams.core.config import AGENDA_RULE_IDS, load_rules, rules_from
from tests.unit import builders as b
from tests.unit.contract_builders import minimal

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
WEIGHTS = load_rules().agenda.weights

EVENTS_MD_WEIGHTS = {
    "police_high_risk": 5, "long_missing": 4, "cse_risk_raised": 4, "linked_children": 3,
    "missing_while_vulnerable": 3, "repeat_missing": 3, "da_high_risk_no_marac": 3, "cmog_action_overdue": 3,
    "da_on_cp_plan": 2, "da_escalation": 2, "cse_low_under13": 2, "multi_agency_concern": 2, "cmog_drift": 2,
    "rhi_overdue": 1, "encompass_overdue": 1, "cp_repeat_plan": 1, "hotspot_emerging": 0,
}


def alert(child: str, rule: str, opened: datetime, *, alert_id: str | None = None, status: str = "open",
          resolved: datetime | None = None, reviewed: datetime | None = None) -> AlertRow:
    return AlertRow(alert_id or f"{child}-{rule}-{opened.isoformat()}", rule, child, status, opened, resolved,
                    reviewed)


def record(event_type: str, child: str, at: datetime, n: int = 0, **fields: Any) -> CmogRecord:
    return CmogRecord(f"{event_type}-{child}-{at.isoformat()}-{n}", event_type, at, child, **fields)


def test_default_weights_and_size_are_events_md() -> None:
    agenda = load_rules().agenda
    assert agenda.weights == EVENTS_MD_WEIGHTS
    assert agenda.top == 30
    assert set(AGENDA_RULE_IDS) == set(EVENTS_MD_WEIGHTS)


def test_weights_config_refuses_unknown_rules_and_negative_weights() -> None:
    with pytest.raises(ValidationError, match="unknown rule"):
        rules_from({"agenda": {"weights": {"police_high_risk_typo": 1}}})
    with pytest.raises(ValidationError, match="0 or more"):
        rules_from({"agenda": {"weights": {"rhi_overdue": -1}}})
    assert rules_from({"agenda": {"weights": {"rhi_overdue": 9}}}).agenda.weight("police_high_risk") == 5


def test_priority_sums_the_weights_of_distinct_rules_once_per_child() -> None:
    alerts = [
        alert("a", "police_high_risk", T, alert_id="1"),
        alert("a", "police_high_risk", T + H, alert_id="2"),  # a second instance: not counted again
        alert("a", "rhi_overdue", T, alert_id="3"),
        alert("b", "long_missing", T, alert_id="4"),
        alert("b", "cse_risk_raised", T, alert_id="5"),
    ]
    agenda = rank(alerts, [], WEIGHTS, T + 2 * H, 30)
    assert [(e.child_key, e.priority, e.rules) for e in agenda.entries] == [
        ("b", 8, ("cse_risk_raised", "long_missing")),
        ("a", 6, ("police_high_risk", "rhi_overdue")),
    ]
    assert [e.rank for e in agenda.entries] == [1, 2]


def test_weights_come_from_the_config_and_weight_zero_does_not_score() -> None:
    alerts = [alert("a", "rhi_overdue", T), alert("b", "police_high_risk", T), alert("c", "hotspot_emerging", T)]
    weights = {**WEIGHTS, "rhi_overdue": 10}
    agenda = rank(alerts, [], weights, T + H, 30)
    assert [(e.child_key, e.priority) for e in agenda.entries] == [("a", 10), ("b", 5)]
    assert agenda.rest == 0  # c scores 0: not on the agenda at all


def test_reviewed_resolved_withdrawn_and_future_alerts_do_not_score() -> None:
    alerts = [
        alert("a", "police_high_risk", T, reviewed=T + H),  # reviewed by as-of
        alert("a", "rhi_overdue", T),
        alert("b", "police_high_risk", T, reviewed=T + 3 * H),  # reviewed only after as-of: still new
        alert("c", "police_high_risk", T, status="resolved", resolved=T + H),
        alert("d", "police_high_risk", T, status="withdrawn"),
        alert("e", "police_high_risk", T + 3 * H),
        alert("f", "police_high_risk", T, status="resolved", resolved=T + 3 * H),  # resolved later: open at as-of
    ]
    agenda = rank(alerts, [], WEIGHTS, T + 2 * H, 30)
    assert {(e.child_key, e.priority) for e in agenda.entries} == {("a", 1), ("b", 5), ("f", 5)}


def test_ties_go_to_the_most_recent_alert_then_the_key() -> None:
    alerts = [
        alert("old", "police_high_risk", T),
        alert("new", "police_high_risk", T + H),
        alert("zz", "police_high_risk", T + 2 * H),
        alert("aa", "police_high_risk", T + 2 * H),
    ]
    agenda = rank(alerts, [], WEIGHTS, T + 3 * H, 30)
    assert [e.child_key for e in agenda.entries] == ["aa", "zz", "new", "old"]


def test_top_n_then_a_count_of_the_rest() -> None:
    alerts = [alert(f"c{i:02d}", "police_high_risk", T + i * H) for i in range(7)]
    agenda = rank(alerts, [], WEIGHTS, T + 10 * H, 3)
    assert [e.child_key for e in agenda.entries] == ["c06", "c05", "c04"]
    assert agenda.rest == 4
    whole = rank(alerts, [], WEIGHTS, T + 10 * H, 7)
    assert len(whole.entries) == 7 and whole.rest == 0


@pytest.mark.parametrize(
    ("events", "on_list"),
    [
        ([], False),
        ([("cmog.listed", None)], True),
        ([("cmog.listed", None), ("cmog.reviewed", "keep")], True),
        ([("cmog.listed", None), ("cmog.reviewed", "step_down")], False),
        ([("cmog.listed", None), ("cmog.reviewed", "close")], False),
        ([("cmog.listed", None), ("cmog.listed", None), ("cmog.reviewed", "close")], False),  # re-listing: nothing
        ([("cmog.listed", None), ("cmog.reviewed", "close"), ("cmog.listed", None)], True),
        ([("cmog.reviewed", "keep")], False),  # keep does not list a child
    ],
)
def test_on_list_transitions(events: list[tuple[str, str | None]], on_list: bool) -> None:
    records = [record(kind, "a", T + i * H, decision=decision) for i, (kind, decision) in enumerate(events)]
    agenda = rank([alert("a", "police_high_risk", T)], records, WEIGHTS, T + 10 * H, 30)
    assert agenda.entries[0].on_list is on_list


def test_actions_open_overdue_at_exactly_due_at_and_ended_by_done_or_cancelled() -> None:
    due = T + 5 * H

    def set_(ref: str, owner: str = "police") -> CmogRecord:
        return record("cmog.action.set", "a", T, action_ref=ref, owner_agency=owner, due_at=due,
                      action_kind="disruption")

    def update(ref: str, status: str, at: datetime) -> CmogRecord:
        return record("cmog.action.updated", "a", at, action_ref=ref, action_status=status)

    records = [
        set_("open"), set_("progress"), update("progress", "in_progress", T + H),
        set_("done"), update("done", "done", due),  # done at exactly due_at: in time
        set_("late", "health"), update("late", "done", due + H),
        set_("cancelled", "health"), update("cancelled", "cancelled", T + H),
    ]
    alerts = [alert("a", "police_high_risk", T)]
    at_due = rank(alerts, records, WEIGHTS, due, 30).entries[0]
    assert (at_due.open_actions, at_due.overdue_actions) == (3, 0)  # open, progress, late; none overdue at due_at
    after = rank(alerts, records, WEIGHTS, due + timedelta(milliseconds=1), 30).entries[0]
    assert (after.open_actions, after.overdue_actions) == (3, 3)
    end = rank(alerts, records, WEIGHTS, due + 2 * H, 30).entries[0]
    assert (end.open_actions, end.overdue_actions) == (2, 2)  # "late" ended by its done update
    accounts = {a.owner_agency: a for a in accountability(records, due + 2 * H)}
    assert (accounts["police"].actions_set, accounts["police"].done_in_time, accounts["police"].done_late,
            accounts["police"].overdue_now) == (3, 1, 0, 2)
    assert (accounts["health"].actions_set, accounts["health"].done_in_time, accounts["health"].done_late,
            accounts["health"].overdue_now) == (2, 0, 1, 0)
    assert len(actions(records, T - H)) == 0  # nothing set yet


def test_last_review_is_the_latest_review_by_as_of() -> None:
    records = [record("cmog.reviewed", "a", T + H, decision="keep"),
               record("cmog.reviewed", "a", T + 3 * H, decision="close")]
    alerts = [alert("a", "police_high_risk", T)]
    entry = rank(alerts, records, WEIGHTS, T + 2 * H, 30).entries[0]
    assert (entry.last_review, entry.last_decision) == (T + H, "keep")
    entry = rank(alerts, records, WEIGHTS, T + 4 * H, 30).entries[0]
    assert (entry.last_review, entry.last_decision) == (T + 3 * H, "close")


# --- through ingest: contract_builders' cmog events and `sgi agenda --replay` ------------------------------


def cmog_event(event_type: str, kid: b.Kid, at: datetime, n: int, **payload: Any) -> dict[str, Any]:
    doc = minimal(event_type)
    doc["child"] = kid.child_doc()
    doc["occurred_at"] = at.isoformat()
    doc["event_id"] = f"00000000-0000-4000-8000-{n:012d}"
    doc["payload"].update(payload)
    return doc


def lines(docs: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(doc) for doc in docs]


def test_replay_agenda_reviews_lists_and_actions_from_the_log() -> None:
    config = load_rules()
    high, other = b.Kid.make(1), b.Kid.make(2)
    base = [
        b.missing_started(high, T, "EP-1", risk="high"),  # police_high_risk (5) ...
        b.missing_started(other, T + H, "EP-2", risk="high"),  # ... for both children
    ]
    first = replay_agenda(lines(base), b.secret(), config, until=T + 2 * H)
    assert [e.child_key for e in first.entries] == [other.key, high.key]  # tie: the more recent alert first
    assert all(e.priority == 5 for e in first.entries)
    # The meeting reviews `other`'s alert, lists `high` and sets `high` an action due in 2 hours.
    engine = b.run(base, T + 2 * H)
    other_alert = next(a.alert_id for a in engine.current_alerts() if a.subject == other.key)
    meeting = T + 2 * H
    docs = base + [
        cmog_event("cmog.reviewed", other, meeting, 1, alert_ids=[other_alert], decision="keep"),
        cmog_event("cmog.listed", high, meeting, 2),
        cmog_event("cmog.action.set", high, meeting, 3, action_ref="ACT-9", due_at=(meeting + 2 * H).isoformat()),
    ]
    agenda = replay_agenda(lines(docs), b.secret(), config, until=meeting + 3 * H)
    assert [e.child_key for e in agenda.entries] == [high.key]  # other's only alert is reviewed
    entry = agenda.entries[0]
    assert (entry.on_list, entry.open_actions, entry.overdue_actions, entry.last_review) == (True, 1, 1, None)
    assert list(entry.as_json()) == list(JSON_FIELDS)
    assert high.key[:12] in table_text(agenda)


def test_command_prints_json_lines_with_exactly_the_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kids = [b.Kid.make(seed) for seed in (21, 22, 23)]
    docs = [b.missing_started(kid, T + i * H, f"EP-{i}", risk="high") for i, kid in enumerate(kids)]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines(docs)) + "\n", encoding="utf-8")
    assert main(["agenda", "--replay", str(log), "--until", (T + 5 * H).isoformat(), "--top", "2",
                 "--format", "json"]) == 0
    out, err = capsys.readouterr()
    objects = [json.loads(line) for line in out.splitlines()]
    assert [list(obj) for obj in objects] == [list(JSON_FIELDS)] * 2
    assert [obj["child_key"] for obj in objects] == [kids[2].key, kids[1].key]
    assert [obj["rank"] for obj in objects] == [1, 2]
    assert objects[0]["rules"] == ["police_high_risk"] and objects[0]["priority"] == 5
    assert "1 more" in err
    assert main(["agenda", "--replay", str(log)]) == 0
    table = capsys.readouterr().out
    assert kids[0].key[:12] in table and "0 more with a priority above 0" in table


def test_command_reports_a_missing_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SGI_CLICKHOUSE_MODE", "server")
    monkeypatch.setenv("SGI_CLICKHOUSE_PORT", "1")  # nothing listens there
    assert main(["agenda", "--as-of", "2026-03-02"]) == 2
    assert "cannot read the store" in capsys.readouterr().err
