"""The incremental child step: a new fact folds into the cached view (only its own episode, plan or
incident is folded again), rules re-run only for the groups whose inputs changed, the checking mode
catches any step that differs from a full recompute, and the clock wakes a child only for due items."""

from __future__ import annotations

from typing import Any

import pytest

import streams.core.rules as rules_module
from streams.core import view as view_module
from streams.core.child import ChildState, step_child, view_of
from streams.core.clock import TICK
from streams.core.config import load_rules
from streams.core.engine import IncrementalMismatch
from streams.core.messages import ToChild
from streams.core.view import add_fact, derive
from tests.unit.builders import (
    DAY,
    HOUR,
    T0,
    Kid,
    cse,
    da,
    episode,
    interview_completed,
    missing_ended,
    missing_started,
    plan_started,
    run,
    to_fact,
)

RULES = load_rules()
KID = Kid.make(700, birth_month="2012-01")


def history() -> list[dict[str, Any]]:
    return [
        missing_started(KID, T0, "E1"),
        missing_ended(KID, T0 + 5 * HOUR, "E1"),
        plan_started(KID, T0 + DAY, "P1"),
        da(KID, T0 + 2 * DAY, "I1", notified=T0 + 2 * DAY + HOUR),
        missing_started(KID, T0 + 3 * DAY, "E2"),
        cse(KID, T0 + 4 * DAY, "medium"),
        missing_ended(KID, T0 + 4 * DAY + 2 * HOUR, "E2"),
    ]


def test_add_fact_equals_derive_for_a_fact_anywhere_in_the_order() -> None:
    facts = [to_fact(doc) for doc in history()]
    for late in range(len(facts)):  # each fact in turn arrives last, whatever its time
        others = facts[:late] + facts[late + 1 :]
        assert add_fact(derive(KID.key, others), facts[late]) == derive(KID.key, facts)


def test_a_late_fact_refolds_only_its_own_episode() -> None:
    facts = [to_fact(doc) for doc in history()]
    late = to_fact(interview_completed(KID, T0 + 6 * HOUR, "E1"))  # sorts before most of the history
    before = derive(KID.key, facts)
    after = add_fact(before, late)
    e1 = episode("E1")
    assert after.episodes[e1] is not before.episodes[e1] and late in after.episodes[e1].facts
    assert after.episodes[episode("E2")] is before.episodes[episode("E2")]  # untouched: the same object
    assert after.plans is before.plans and after.incidents is before.incidents
    assert after.assessments is before.assessments


def test_rules_rerun_only_for_the_group_a_fact_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = run(history())
    calls: list[str] = []
    original = rules_module._rhi_overdue_one

    def counting(episode: Any, view: Any, config: Any) -> Any:
        calls.append(episode.ref)
        return original(episode, view, config)

    monkeypatch.setattr(rules_module, "_rhi_overdue_one", counting)
    state = engine.children[KID.key]
    fact = to_fact(interview_completed(KID, T0 + 4 * DAY + 3 * HOUR, "E2"))
    new_state, _ = step_child(state, ToChild(child_key=KID.key, fact=fact), T0 + 5 * DAY, engine.config)
    assert calls == [episode("E2")]  # E1's result came from the memo
    # A state read back from JSON has no memo: every group is evaluated (the full recompute).
    calls.clear()
    fresh = ChildState.from_json(state.to_json())
    step_child(fresh, ToChild(child_key=KID.key, fact=fact), T0 + 5 * DAY, engine.config)
    assert sorted(calls) == sorted([episode("E1"), episode("E2")])
    assert new_state is not None and view_of(new_state).episodes[episode("E2")].met == fact


def test_checking_mode_passes_on_the_incremental_path() -> None:
    engine = run(history(), until=T0 + 9 * DAY, check=True)
    assert any(alert.rule == "da_on_cp_plan" for alert in engine.alerts.values())


def test_checking_mode_catches_an_incremental_step_that_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    def forgetful(view: view_module.ChildView, fact: Any) -> view_module.ChildView:
        return view  # a broken fold: the new fact never reaches the view

    monkeypatch.setattr("streams.core.child.add_fact", forgetful)
    with pytest.raises(IncrementalMismatch):
        run(history(), check=True)
    run(history())  # without the checking mode nothing notices


def test_the_clock_wakes_a_child_only_for_a_deadline_that_can_still_fire() -> None:
    # The episode ended after 5 h: long_missing (24 h) can never fire, so no tick is due for it; the
    # return interview is due 72 h after the return.
    engine = run([missing_started(KID, T0, "E1"), missing_ended(KID, T0 + 5 * HOUR, "E1")])
    assert engine.children[KID.key].due_at == T0 + 5 * HOUR + 72 * HOUR + TICK
    # The interview done in time: the next due item is the snapshot's 30-day count edge.
    engine = run([
        missing_started(KID, T0, "E1"),
        missing_ended(KID, T0 + 5 * HOUR, "E1"),
        interview_completed(KID, T0 + 6 * HOUR, "E1"),
    ])
    assert engine.children[KID.key].due_at == T0 + 30 * DAY
    # Encompass notified in time (before 09:00 the next school day): no encompass tick either.
    engine = run([da(KID, T0, "I1", notified=T0)])
    due = engine.children[KID.key].due_at
    assert due is not None and due > T0 + 2 * DAY  # (the next birthday's age band)
    engine = run([da(KID, T0, "I2")])
    assert engine.children[KID.key].due_at is not None and engine.children[KID.key].due_at < T0 + 2 * DAY


def test_a_tick_with_nothing_due_sends_nothing() -> None:
    engine = run([missing_started(KID, T0, "E1"), missing_ended(KID, T0 + 5 * HOUR, "E1")])
    assert engine.advance(T0 + 77 * HOUR) == []  # before the interview deadline: nothing is due
    records = engine.advance(T0 + 77 * HOUR + TICK)
    assert [getattr(record, "rule", None) for record in records if hasattr(record, "rule")] == ["rhi_overdue"]
