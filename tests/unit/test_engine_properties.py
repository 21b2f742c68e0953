"""Properties of the core (hypothesis): arrival order within the lateness bound, duplication and
other children's events never change a child's final alerts, episodes or snapshot.

"Final" is what `sgi replay` would print: the open and resolved alerts once the clock has reached
the same `until`. Withdrawn alerts are an artefact of order (something was believed for a while)
and are not compared.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.config import RulesConfig, load_rules
from streams.core.engine import Engine
from tests.unit.builders import (
    DAY,
    T0,
    Kid,
    cse,
    da,
    interview_completed,
    interview_declined,
    interview_offered,
    linked,
    missing_ended,
    missing_started,
    nhs_number,
    place,
    plan_ended,
    plan_started,
    risk_graded,
    run,
)

SAME_CHILD_NHS = nhs_number(900)
SAME_CHILD_LA = "LA-000077"
KIDS = (
    Kid((("nhs_number", SAME_CHILD_NHS),), birth_month="2014-06"),
    Kid((("la_person_id", SAME_CHILD_LA),), birth_month="2014-06", looked_after=True),  # same child, other record
    Kid.make(901, birth_month="2011-02"),
    Kid.make(902, birth_month="2016-09", learning_disability=True),
)
PLACES = (
    None,
    place("CV1 2GN"),
    place("CV1 2GN", premises={"category": "takeaway", "name": "Chicken Hut"}),
    place("CV6 5AB", ward="E05001219"),
)
AGENCIES = ("police", "health", "education", "childrens_social_care")
KINDS = (
    "started", "started", "ended", "ended", "graded", "offered", "completed", "declined",
    "cse", "da", "plan_started", "plan_ended", "link",
)

DEFAULTS = load_rules()


@st.composite
def scenarios(draw: st.DrawFn, span_days: int = 40, bursts: int = 1) -> list[dict[str, Any]]:
    """Several children (two records of one child, linked or not), mixed events.

    With bursts > 1 the events fall in bursts of up to 20 days spread over `span_days` (longer
    than the horizon, so states prune); refs are then per burst, as an episode, plan or incident
    does not span years, and the two records are linked in the first burst (see child._needed for
    both boundaries).
    """
    starts = [0] if bursts == 1 else draw(st.lists(st.integers(0, span_days), min_size=bursts, max_size=bursts))
    burst_days = span_days if bursts == 1 else 20
    docs: list[dict[str, Any]] = []
    for index in range(draw(st.integers(3, 24))):
        kid = KIDS[draw(st.integers(0, len(KIDS) - 1))]
        burst = draw(st.integers(0, len(starts) - 1))
        minutes = draw(st.integers(0, burst_days * 24 * 60))
        at = T0 + timedelta(days=starts[burst], minutes=minutes)
        kind = draw(st.sampled_from(KINDS))
        ref = f"B{burst}R{draw(st.integers(0, 2))}"
        location = draw(st.sampled_from(PLACES))
        common: dict[str, Any] = {"agency": draw(st.sampled_from(AGENCIES)), "salt": str(index)}
        if location is not None and kind in {"started", "ended"}:
            common["location"] = location
        if kind == "started":
            risk = draw(st.sampled_from([None, "low", "high"]))
            docs.append(missing_started(kid, at, ref, risk=risk, **common))
        elif kind == "ended":
            docs.append(missing_ended(kid, at, ref, **common))
        elif kind == "graded":
            docs.append(risk_graded(kid, at, ref, draw(st.sampled_from(["medium", "high"])), **common))
        elif kind == "offered":
            docs.append(interview_offered(kid, at, ref, **common))
        elif kind == "completed":
            places = [p for p in PLACES[1:] if draw(st.booleans())]
            docs.append(interview_completed(kid, at, ref, places=places, **common))
        elif kind == "declined":
            docs.append(interview_declined(kid, at, ref, **common))
        elif kind == "cse":
            docs.append(cse(kid, at, draw(st.sampled_from(["none", "low", "medium", "high"])), **common))
        elif kind == "da":
            notified = draw(st.sampled_from([None, timedelta(hours=6), timedelta(days=4)]))
            docs.append(
                da(
                    kid,
                    at,
                    f"I{ref}",
                    present=draw(st.booleans()),
                    marac=draw(st.booleans()),
                    dash=draw(st.sampled_from([None, 5, 14])),
                    notified=at + notified if notified is not None else None,
                    **common,
                )
            )
        elif kind == "plan_started":
            docs.append(plan_started(kid, at, f"P{ref}", previous=draw(st.integers(0, 1)), **common))
        elif kind == "plan_ended":
            docs.append(plan_ended(kid, at, f"P{ref}", **common))
        else:
            if bursts > 1:
                # Merge in the first burst: merging records with more than a horizon of history each
                # is a known boundary (child._needed), not what this property is about.
                at = T0 + timedelta(days=min(starts), minutes=minutes)
            docs.append(linked([("nhs_number", SAME_CHILD_NHS), ("la_person_id", SAME_CHILD_LA)], at, **common))
    return docs


def occurred(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["occurred_at"])


@st.composite
def arrivals(draw: st.DrawFn, docs: list[dict[str, Any]], lateness: timedelta) -> list[dict[str, Any]]:
    """An arrival order in which every event is less than `lateness` behind the watermark, with
    some events delivered twice. Each copy arrives at occurred_at + a delay below the bound, so the
    watermark when it arrives is at most that arrival time."""
    bound = int(lateness.total_seconds() // 60) - 1
    delay = st.integers(0, bound)
    copies = [(occurred(doc) + timedelta(minutes=draw(delay)), n, doc) for n, doc in enumerate(docs)]
    for n in draw(st.lists(st.integers(0, len(docs) - 1), max_size=4)):
        copies.append((occurred(docs[n]) + timedelta(minutes=draw(delay)), len(copies), docs[n]))
    return [doc for _, _, doc in sorted(copies, key=lambda c: (c[0], c[1]))]


def in_time_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(docs, key=lambda doc: (occurred(doc), doc["event_id"]))


def final(engine: Engine) -> dict[str, Any]:
    """Everything that must not depend on arrival order."""
    live = {key for key, state in engine.children.items() if state.retired_into is None}
    return {
        "alerts": {
            (a.alert_id, a.rule, a.subject, a.status, a.opened_at, a.resolved_at, tuple(a.evidence), a.summary)
            for a in engine.current_alerts()
        },
        "episodes": {
            key: e.model_copy(update={"changed_at": T0}) for key, e in engine.episodes.items() if key[0] in live
        },
        "snapshots": {
            key: s.model_copy(update={"changed_at": T0}) for key, s in engine.snapshots.items() if key in live
        },
    }


def _check_order_independence(data: st.DataObject, config: RulesConfig, **scenario: int) -> None:
    docs = data.draw(scenarios(**scenario))
    arrived = data.draw(arrivals(docs, config.lateness))
    until = max(occurred(doc) for doc in docs) + data.draw(st.sampled_from([timedelta(0), 2 * DAY, 9 * DAY]))
    # check=True: every incremental step (cached view) is also compared with a full recompute.
    expected = final(run(in_time_order(docs), until=until, config=config, check=True))
    for actual in (
        final(run(arrived, until=until, config=config, roundtrip=True)),  # every state through JSON
        final(run(arrived, until=until, config=config, check=True)),  # states kept in memory, incremental
    ):
        assert actual["alerts"] == expected["alerts"]
        assert actual["episodes"] == expected["episodes"]
        assert _diff(actual["snapshots"], expected["snapshots"]) == {}


def _diff(actual: dict[Any, Any], expected: dict[Any, Any]) -> dict[Any, Any]:
    """Field-level differences, for a readable failure."""
    differences: dict[Any, Any] = {}
    for key in set(actual) | set(expected):
        left, right = actual.get(key), expected.get(key)
        if left == right:
            continue
        if left is None or right is None:
            differences[key] = (left, right)
            continue
        a, b = left.model_dump(), right.model_dump()
        differences[key] = {name: (a[name], b[name]) for name in a if a[name] != b[name]}
    return differences


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_any_arrival_order_and_duplication_gives_the_same_final_state(data: st.DataObject) -> None:
    _check_order_independence(data, DEFAULTS)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_order_independence_holds_while_states_prune(data: st.DataObject) -> None:
    """Bursts of events over three years: facts and final alerts are pruned during the run."""
    _check_order_independence(data, DEFAULTS, span_days=3 * 365, bursts=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_a_childs_alerts_do_not_depend_on_other_children(docs: list[dict[str, Any]]) -> None:
    """Per-child isolation: child alerts of the third child are the same with or without the rest."""
    kid = KIDS[2]
    mine = [doc for doc in docs if doc.get("child", {}).get("identifiers") == kid.child_doc()["identifiers"]]
    until = max(occurred(doc) for doc in docs) + 3 * DAY

    def child_alerts(engine: Engine) -> set[tuple[str, str]]:
        return {(a.alert_id, a.status) for a in engine.current_alerts() if a.subject == kid.key}

    assert child_alerts(run(docs, until=until)) == child_alerts(run(in_time_order(mine), until=until))


def test_pruning_keeps_memory_bounded() -> None:
    """A child missing every 16 days for three years keeps only about a horizon of facts and of
    alerts, and the alerts raised along the way stay in the output."""
    kid = KIDS[2]
    docs = []
    for n in range(70):
        at = T0 + n * 16 * DAY
        interviewed = at + (5 * DAY if n % 10 == 0 else DAY)  # every 10th interview is late
        docs += [
            missing_started(kid, at, f"W{n}"),
            missing_ended(kid, at + timedelta(hours=2), f"W{n}"),
            interview_completed(kid, interviewed, f"W{n}"),
        ]
    engine = run(docs)
    state = engine.children[kid.key]
    per_horizon = DEFAULTS.child_horizon.days // 16 + 2
    assert len(state.facts) <= 3 * per_horizon
    overdue = [a for a in engine.current_alerts() if a.rule == "rhi_overdue"]
    assert len(overdue) == 7 and all(a.status == "resolved" for a in overdue)
    assert len(state.alerts) <= 3  # only those not yet final are kept
    assert len(run(docs[:60]).children[kid.key].facts) == 60  # within a horizon nothing is pruned
