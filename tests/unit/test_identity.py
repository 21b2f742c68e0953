"""Identity resolution and merges: one canonical key per child, state merged, rules re-evaluated."""

from __future__ import annotations

import itertools

from models.derived import Fact
from streams.core.child import Absorb, ChildState, step_child
from streams.core.config import load_rules
from streams.core.identity import IdentityState, resolve
from streams.core.messages import Retire, Tick, ToChild
from tests.unit.builders import (
    DAY,
    HOUR,
    T0,
    Kid,
    alerts_for,
    cse,
    key_of,
    linked,
    missing_ended,
    missing_started,
    nhs_number,
    place,
    run,
    to_fact,
    upn,
)


def _fact(keys: list[str], event_id: str = "e") -> Fact:
    return Fact(event_id=event_id, event_type="identity.linked", occurred_at=T0, agency="other", child_keys=keys)


# --- resolve -----------------------------------------------------------------------------------


def test_a_new_key_is_its_own_child() -> None:
    state, routed = resolve(IdentityState(), _fact(["k5"]))
    assert routed == [ToChild(child_key="k5", fact=_fact(["k5"]))]
    assert state.find("k5") == "k5"


def test_keys_on_one_fact_are_one_child_under_the_smallest_key() -> None:
    state, routed = resolve(IdentityState(), _fact(["k5", "k2", "k9"]))
    assert [type(m).__name__ for m in routed] == ["ToChild"]  # nothing had state yet: nothing to retire
    assert routed[0].child_key == "k2"  # type: ignore[union-attr]
    assert {state.find(k) for k in ("k5", "k2", "k9")} == {"k2"}


def test_a_link_joining_two_known_children_retires_the_larger_root() -> None:
    state = IdentityState()
    resolve(state, _fact(["k5"]))
    resolve(state, _fact(["k3", "k7"]))
    _, routed = resolve(state, _fact(["k7", "k5"]))
    assert routed == [Retire(old_key="k5", into_key="k3"), ToChild(child_key="k3", fact=_fact(["k7", "k5"]))]
    # A smaller new key takes over: the old root retires into it.
    _, routed = resolve(state, _fact(["k5", "k1"]))
    assert routed[0] == Retire(old_key="k3", into_key="k1")
    assert all(state.find(k) == "k1" for k in ("k1", "k3", "k5", "k7"))


def test_the_canonical_key_does_not_depend_on_link_order() -> None:
    links = [["a9", "b4"], ["b4", "c2"], ["d7"], ["c2", "e8"], ["d7", "a9"]]
    roots = set()
    for order in itertools.permutations(links):
        state = IdentityState()
        for keys in order:
            resolve(state, _fact(list(keys)))
        roots.add(tuple(state.find(k) for k in ("a9", "b4", "c2", "d7", "e8")))
    assert roots == {("a9",) * 5}  # the smallest key of the component, whatever the order


def test_identity_state_round_trips_through_json() -> None:
    state = IdentityState()
    resolve(state, _fact(["k5", "k2"]))
    again = IdentityState.from_json(state.to_json())
    assert again.find("k5") == "k2" and again.parent == state.parent


def test_paths_are_compressed() -> None:
    state = IdentityState(parent={"a": "a", "b": "a", "c": "b", "d": "c"})
    assert state.find("d") == "a"
    assert state.parent["d"] == "a" and state.parent["c"] == "a"


# --- merges through the engine -----------------------------------------------------------------

NHS = nhs_number(101)
LA_ID = "LA-000123"


def _two_records() -> tuple[Kid, Kid, str, str]:
    """One child known to health by NHS number and to social care by an LA id: tracked apart."""
    by_nhs = Kid((("nhs_number", NHS),))
    by_la = Kid((("la_person_id", LA_ID),))
    nhs_key, la_key = key_of("nhs_number", NHS), key_of("la_person_id", LA_ID)
    return by_nhs, by_la, nhs_key, la_key


def test_merge_after_events_re_evaluates_on_the_canonical_key() -> None:
    by_nhs, by_la, nhs_key, la_key = _two_records()
    canonical, retired = min(nhs_key, la_key), max(nhs_key, la_key)
    starts = [
        missing_started(by_nhs, T0, "E1"), missing_ended(by_nhs, T0 + HOUR, "E1"),
        missing_started(by_nhs, T0 + 5 * DAY, "E2"), missing_ended(by_nhs, T0 + 5 * DAY + HOUR, "E2"),
        missing_started(by_la, T0 + 9 * DAY, "E3"), missing_ended(by_la, T0 + 9 * DAY + HOUR, "E3"),
        # the retired record also raised an alert of its own before the merge
        cse(by_la if retired == la_key else by_nhs, T0 + 9 * DAY + 2 * HOUR, "medium"),
    ]
    apart = run(starts)
    assert alerts_for(apart, "repeat_missing") == []  # 2 + 1 starts, tracked apart
    before = alerts_for(apart, "cse_risk_raised")
    assert [a.subject for a in before] == [retired]

    merged = run([*starts, linked([("nhs_number", NHS), ("la_person_id", LA_ID)], T0 + 10 * DAY)])
    repeat = alerts_for(merged, "repeat_missing", shown_only=True)
    assert [(a.subject, a.status, a.opened_at) for a in repeat] == [(canonical, "open", T0 + 9 * DAY)]
    raised = alerts_for(merged, "cse_risk_raised")
    assert {(a.subject, a.status) for a in raised} == {(retired, "withdrawn"), (canonical, "open")}
    snapshot = merged.snapshots[canonical]
    assert snapshot.merged_keys == [retired] and not snapshot.retired
    assert merged.snapshots[retired].retired
    assert snapshot.episodes_30d == 3
    assert merged.children[retired].retired_into == canonical
    assert merged.children[retired].facts == {}


def test_merge_through_identifiers_on_one_event() -> None:
    upn_value = upn(555)
    by_nhs = Kid((("nhs_number", NHS),))
    by_upn = Kid((("upn", upn_value),))
    both = Kid((("nhs_number", NHS), ("upn", upn_value)))
    docs = [
        missing_started(by_nhs, T0, "E1"), missing_ended(by_nhs, T0 + HOUR, "E1"),
        missing_started(by_upn, T0 + DAY, "E2"), missing_ended(by_upn, T0 + DAY + HOUR, "E2"),
        missing_started(both, T0 + 2 * DAY, "E3"), missing_ended(both, T0 + 2 * DAY + HOUR, "E3"),
    ]
    engine = run(docs)
    canonical = min(key_of("nhs_number", NHS), key_of("upn", upn_value))
    repeat = alerts_for(engine, "repeat_missing", shown_only=True)
    assert [(a.subject, a.opened_at) for a in repeat] == [(canonical, T0 + 2 * DAY)]
    assert len(repeat[0].evidence) == 3


def test_a_merged_child_counts_once_at_a_place() -> None:
    by_nhs, by_la, _, _ = _two_records()
    other = Kid.make(102)
    sector = place("CV1 2GN", premises={"category": "takeaway", "name": "Chicken Hut"})
    docs = [
        missing_started(by_nhs, T0, "E1", location=sector),
        missing_started(by_la, T0 + DAY, "E2", location=sector),
        missing_started(other, T0 + 2 * DAY, "E3", location=sector),
    ]
    apart = run(docs)
    assert len(alerts_for(apart, "hotspot_emerging", shown_only=True)) == 1  # looks like 3 children
    merged = run([*docs, linked([("nhs_number", NHS), ("la_person_id", LA_ID)], T0 + 3 * DAY)])
    assert alerts_for(merged, "hotspot_emerging", shown_only=True) == []
    assert {a.status for a in alerts_for(merged, "hotspot_emerging")} == {"withdrawn"}
    links = merged.places["premises:takeaway:chicken hut:CV1 2"].links.values()
    assert len({link.child_key for link in links}) == 2


def test_a_link_arriving_first_gives_the_same_alerts() -> None:
    by_nhs, by_la, _, _ = _two_records()
    link = linked([("nhs_number", NHS), ("la_person_id", LA_ID)], T0 - DAY)
    docs = [
        missing_started(by_nhs, T0, "E1"), missing_started(by_nhs, T0 + 5 * DAY, "E2"),
        missing_started(by_la, T0 + 9 * DAY, "E3"),
    ]
    first = run([link, *docs], until=T0 + 12 * DAY)
    last = run([*docs, link], until=T0 + 12 * DAY)
    assert {(a.alert_id, a.status) for a in first.current_alerts()} == {
        (a.alert_id, a.status) for a in last.current_alerts()}


# --- the child step around a merge -------------------------------------------------------------


def test_a_retired_child_forwards_what_still_reaches_it() -> None:
    config = load_rules()
    fact = to_fact(missing_started(Kid.make(103), T0, "E1"))
    state, _ = step_child(None, ToChild(child_key="k9", fact=fact), T0, config)
    tombstone, outputs = step_child(state, Retire(old_key="k9", into_key="k1"), T0, config)
    assert tombstone is not None and tombstone.retired_into == "k1"
    absorb = [o for o in outputs if isinstance(o, Absorb)]
    assert len(absorb) == 1 and absorb[0].into_key == "k1" and fact.event_id in absorb[0].state.facts
    late = to_fact(missing_started(Kid.make(103), T0 + HOUR, "E2"))
    _, forwarded = step_child(tombstone, ToChild(child_key="k9", fact=late), T0, config)
    assert forwarded == [ToChild(child_key="k1", fact=late)]
    assert step_child(tombstone, Tick(), T0 + DAY, config)[1] == []


def test_absorb_before_any_fact_creates_the_survivor() -> None:
    config = load_rules()
    fact = to_fact(missing_started(Kid.make(104), T0, "E1"))
    donor = ChildState(key="k9", facts={fact.event_id: fact})
    state, outputs = step_child(None, Absorb(into_key="k1", state=donor), T0 + 2 * DAY, config)
    assert state is not None and state.key == "k1"
    assert state.merged_keys == sorted(["k9", *fact.child_keys])  # the donor's key and every key its facts named
    assert any(getattr(o, "rule", None) == "long_missing" and o.subject == "k1" for o in outputs)  # type: ignore[union-attr]


def test_a_duplicated_event_changes_nothing() -> None:
    config = load_rules()
    fact = to_fact(missing_started(Kid.make(105), T0, "E1"))
    state, sent = step_child(None, ToChild(child_key="k1", fact=fact), T0, config)
    again, outputs = step_child(state, ToChild(child_key="k1", fact=fact), T0 + HOUR, config)
    # The state is unchanged; what the first step sent goes out again, unchanged, in case a crash
    # lost it (a redelivery), and nothing new.
    assert again == state
    assert outputs and all(output in sent for output in outputs)


def test_child_state_round_trips_through_json() -> None:
    kid = Kid.make(106, looked_after=True)
    engine = run([missing_started(kid, T0, "E1", location=place("CV1 2GN")), cse(kid, T0 + HOUR, "high")],
                 until=T0 + 3 * DAY)
    state = engine.children[kid.key]
    assert ChildState.from_json(state.to_json()) == state
    assert state.alerts and state.links and state.snapshot is not None
